#include "serve/export.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "envs/conductor_env.h"
#include "envs/registry.h"
#include "serve/conductor_world.h"
#include "artifacts/safetensors.h"
#include "artifacts/sha256.h"

namespace conductor {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "manifest.json";
constexpr const char* kModel = "model.safetensors";

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json reward_json(const RewardConfig& r) {
  const char* mode = r.budget.mode == BudgetMode::kCap ? "cap" : r.budget.mode == BudgetMode::kLagrange ? "lagrange" : "none";
  return {{"w_quality", r.w_quality},
          {"w_cost", r.w_cost},
          {"w_latency", r.w_latency},
          {"no_answer_penalty", r.no_answer_penalty},
          {"budget", {{"mode", mode}, {"cap_usd", r.budget.cap_usd}, {"target_mean_cost_usd", r.budget.target_mean_cost_usd}}}};
}

void fsync_dir(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

bool is_export_dir(const std::string& dir) {
  const fs::path m = fs::path(dir) / kManifest;
  if (!fs::is_regular_file(m)) return false;
  try {
    const json j = json::parse(read_file(m.string()));
    return j.is_object() && j.value("format", "") == kExportFormatName;
  } catch (const std::exception&) {
    return false;
  }
}

void write_export(const std::string& dir, const ExportContents& c, bool overwrite) {
  if (dir.empty()) fail("export: the output directory is empty");
  const fs::path out = fs::absolute(dir).lexically_normal();
  const fs::path parent = out.parent_path();
  make_dirs(parent.string());
  if (fs::exists(out)) {
    if (!overwrite)
      fail("export: '", dir, "' already exists (pass --force to replace an earlier export, or choose another --out)");
    if (!is_export_dir(out.string()))
      fail("export: refusing to replace '", dir, "': it is not an export directory (no conductor-export manifest.json)");
  }
  if (c.policy_kind != "mlp") fail("export: policy kind '", c.policy_kind, "' cannot be exported (supported: mlp)");

  const std::string tmp = out.string() + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  fs::remove_all(tmp);
  make_dirs(tmp);
  struct Cleanup {
    std::string path;
    bool keep = false;
    ~Cleanup() {
      if (!keep) {
        std::error_code ec;
        fs::remove_all(path, ec);
      }
    }
  } cleanup{tmp};

  safetensors::File st;
  st.metadata["format"] = "pt";
  st.metadata["conductor.format"] = kExportFormatName;
  st.metadata["conductor.policy_kind"] = c.policy_kind;
  for (const auto& t : c.tensors) {
    if (st.tensors.count(t.name)) fail("export: tensor '", t.name, "' appears twice");
    st.tensors[t.name] = safetensors::Tensor::from_f32(t.shape, t.data);
  }
  const std::string model_bytes = safetensors::serialize(st);
  write_file_atomic(tmp + "/" + kModel, model_bytes);
  const std::string sha = sha256_hex(model_bytes);

  json workers = json::array();
  if (c.world.is_object())
    for (const auto& w : c.world["workers"]) workers.push_back(w["name"]);
  json manifest = {
      {"format", kExportFormatName},
      {"format_version", kExportFormatVersion},
      {"created_utc", utc_now()},
      {"conductor_version", "0.1.0"},
      {"model_version", c.policy_kind + "-" + sha.substr(0, 12)},
      {"policy", {{"kind", c.policy_kind}, {"config", c.policy_config}}},
      {"env_id", c.env_id},
      {"action_space", {{"n_actions", c.action_names.size()}, {"actions", c.action_names}, {"workers", workers}}},
      {"world", c.world},
      {"reward", c.reward},
      {"training", c.training},
      {"files", {{kModel, {{"sha256", sha}, {"bytes", model_bytes.size()}}}}}};
  write_json_atomic(tmp + "/" + kManifest, manifest);

  // Validate what we wrote before it replaces anything.
  load_export_bundle(tmp);

  if (fs::exists(out)) {
    const std::string old = tmp + ".old";
    fs::rename(out, old);
    fs::rename(tmp, out);
    std::error_code ec;
    fs::remove_all(old, ec);
  } else {
    std::error_code ec;
    fs::rename(tmp, out, ec);
    if (ec) fail("export: cannot rename '", tmp, "' to '", dir, "': ", ec.message());
  }
  cleanup.keep = true;
  fsync_dir(parent.string());
}

namespace {
std::unique_ptr<Policy> verify_and_load(const std::string& dir, json* manifest_out);
}  // namespace

LoadedExport load_export_bundle(const std::string& dir) {
  LoadedExport out;
  out.dir = dir;
  out.policy = verify_and_load(dir, &out.manifest);
  out.model_version = out.manifest.value("model_version", "");
  return out;
}

std::unique_ptr<Policy> load_export(const std::string& dir) { return verify_and_load(dir, nullptr); }

namespace {
std::unique_ptr<Policy> verify_and_load(const std::string& dir, json* manifest_out) {
  const fs::path root(dir);
  const fs::path mpath = root / kManifest;
  if (!fs::is_directory(root)) fail(dir, ": no such export directory");
  if (!fs::is_regular_file(mpath))
    fail(dir, ": not an export directory (no manifest.json); create one with `conductor export --checkpoint RUN_DIR --out DIR`");
  json m;
  try {
    m = json::parse(read_file(mpath.string()));
  } catch (const json::parse_error& e) {
    fail(mpath.string(), ": invalid JSON at byte ", e.byte);
  }
  if (!m.is_object() || m.value("format", "") != kExportFormatName)
    fail(mpath.string(), ": 'format' is not \"", kExportFormatName, "\": this is not a Conductor export");
  if (!m.contains("format_version") || !m["format_version"].is_number_integer())
    fail(mpath.string(), ": missing integer 'format_version'");
  const int version = m["format_version"].get<int>();
  if (version != kExportFormatVersion)
    fail(mpath.string(), ": format_version ", version, " is not supported (this build reads version ", kExportFormatVersion,
         version > kExportFormatVersion ? "; the export was written by a newer Conductor)" : ")");
  if (!m.contains("files") || !m["files"].is_object()) fail(mpath.string(), ": missing object 'files'");
  const json& files = m["files"];
  // Every file must be vouched for by the manifest, and match it.
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (name == kManifest) continue;
    if (!files.contains(name))
      fail(dir, ": file '", name, "' is not listed in manifest.json: refusing an export with unverified files");
  }
  for (const auto& [name, info] : files.items()) {
    const fs::path p = root / name;
    if (name.find('/') != std::string::npos || name == ".." || !fs::is_regular_file(p))
      fail(mpath.string(), ": lists '", name, "', which is missing from ", dir);
    if (!info.is_object() || !info.contains("sha256") || !info["sha256"].is_string() || !info.contains("bytes") ||
        !info["bytes"].is_number_unsigned())
      fail(mpath.string(), ": files['", name, "'] must be {\"sha256\": hex, \"bytes\": size}");
    const auto size = fs::file_size(p);
    if (size != info["bytes"].get<uint64_t>())
      fail(p.string(), ": size ", size, " bytes, but the manifest says ", info["bytes"].get<uint64_t>(),
           ": the export is damaged or was modified");
    const std::string sha = sha256_file(p.string());
    if (sha != info["sha256"].get<std::string>())
      fail(p.string(), ": sha256 ", sha, " does not match the manifest's ", info["sha256"].get<std::string>(),
           ": the export is damaged or was modified");
  }
  if (!files.contains(kModel)) fail(mpath.string(), ": files does not list ", kModel);

  const json& policy = m.contains("policy") ? m["policy"] : json();
  if (!policy.is_object() || !policy.contains("kind") || !policy["kind"].is_string())
    fail(mpath.string(), ": missing 'policy.kind'");
  const std::string kind = policy["kind"].get<std::string>();
  if (kind != "mlp") fail(mpath.string(), ": policy kind '", kind, "' is not supported by this build (supported: mlp)");
  const MlpSpec spec = MlpSpec::from_json(policy.value("config", json()), mpath.string() + ": policy.config");
  const safetensors::File st = safetensors::read_file((root / kModel).string());
  std::vector<NamedTensor> tensors;
  for (const auto& [name, t] : st.tensors) {
    NamedTensor nt;
    nt.name = name;
    nt.shape = t.shape;
    nt.data = t.to_f32(name);
    tensors.push_back(std::move(nt));
  }
  std::unique_ptr<Policy> p;
  try {
    p = make_mlp_policy(spec, tensors);
  } catch (const Error& e) {
    fail((root / kModel).string(), ": ", e.what());
  }
  if (manifest_out) *manifest_out = std::move(m);
  return p;
}
}  // namespace

std::unique_ptr<Policy> load_any_policy(const std::string& dir) {
  if (is_export_dir(dir)) return load_export(dir);
  return load_policy(dir);
}

ExportContents export_from_run(const std::string& run_or_checkpoint_dir) {
  const std::string ck = resolve_checkpoint_dir(run_or_checkpoint_dir);
  fs::path run = fs::path(run_or_checkpoint_dir);
  if (!fs::is_regular_file(run / "config.yaml")) run = fs::path(ck).parent_path().parent_path();
  const fs::path cfg_path = run / "config.yaml";
  if (!fs::is_regular_file(cfg_path))
    fail(run_or_checkpoint_dir, ": cannot find the run's config.yaml (looked in ", run.string(),
         "): export needs it to rebuild the serving world");

  ExportContents c;
  MlpSpec spec;
  c.tensors = load_mlp_tensors(ck, &spec);
  // Only the actor is needed to act; the critic is left out of the deployable artifact.
  std::vector<NamedTensor> actor;
  for (auto& t : c.tensors)
    if (t.name.rfind("actor.", 0) == 0) actor.push_back(std::move(t));
  c.tensors = std::move(actor);
  c.policy_kind = "mlp";
  c.policy_config = spec.to_json();

  ConfigDoc doc = ConfigDoc::load_file(cfg_path.string());
  ConfigReader env = doc.root().child("env");
  c.env_id = env.required<std::string>("id");
  env.get<int>("num_envs", 1);
  if (c.env_id == "conductor") {
    const ConductorEnvConfig ec = ConductorEnvConfig::parse(env);
    auto world = ConductorWorld::build(ec);
    c.world = serve::world_spec_from_env(*world, ec);
    auto live = serve::ConductorLiveWorld::from_spec(c.world, cfg_path.string());
    if (live->obs_dim() != spec.obs_dim || live->n_actions() != spec.n_actions)
      fail(run_or_checkpoint_dir, ": the run's config builds observations of ", live->obs_dim(), " floats and ",
           live->n_actions(), " actions, but the checkpoint's policy expects ", spec.obs_dim, " and ", spec.n_actions,
           ": was config.yaml edited after training?");
    for (const auto& a : live->actions()) c.action_names.push_back(a.name);
    c.reward = reward_json(ec.reward);
  } else {
    auto e = make_env(c.env_id, env, 1);
    c.action_names = e->spec().action_names;
    c.world = nullptr;
    c.reward = nullptr;
  }
  json metrics = nullptr;
  const fs::path mpath = run / "metrics.jsonl";
  if (fs::is_regular_file(mpath)) {
    std::ifstream f(mpath);
    std::string line, last;
    while (std::getline(f, line))
      if (!line.empty()) last = line;
    if (!last.empty()) {
      try {
        metrics = json::parse(last);
      } catch (const json::exception&) {
        fail(mpath.string(), ": the last line is not valid JSON");
      }
    }
  }
  c.training = {{"run_dir", fs::absolute(run).lexically_normal().string()},
                {"checkpoint", fs::path(ck).filename().string()},
                {"last_metrics", metrics}};
  return c;
}

}  // namespace conductor
