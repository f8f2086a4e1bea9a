#include "trainer/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "core/atomic_dir.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/log.h"
#include "core/version.h"

namespace conductor {

namespace fs = std::filesystem;

namespace {

json rng_to_json(const Rng& rng) {
  const Rng::State st = rng.state();
  return json{{"s", {st.s[0], st.s[1], st.s[2], st.s[3]}}, {"has_spare", st.has_spare}, {"spare", st.spare}};
}

void rng_from_json(Rng& rng, const json& j) {
  Rng::State st;
  for (int i = 0; i < 4; ++i) st.s[i] = j.at("s").at(i).get<uint64_t>();
  st.has_spare = j.at("has_spare").get<bool>();
  st.spare = j.at("spare").get<double>();
  rng.set_state(st);
}

// env_state.bin for the first persistent environment, env_state.<k>.bin for further ones; rank r > 0
// of a data-parallel run keeps its own under rank_<r>/.
std::string env_state_file(std::size_t k, int rank = 0) {
  const std::string name = k == 0 ? std::string("env_state.bin") : "env_state." + std::to_string(k) + ".bin";
  return rank == 0 ? name : "rank_" + std::to_string(rank) + "/" + name;
}

json streams_to_json(const std::map<int64_t, Rng>& streams) {
  json a = json::array();
  for (const auto& [index, rng] : streams) a.push_back(json{{"env", index}, {"rng", rng_to_json(rng)}});
  return a;
}

void streams_from_json(std::map<int64_t, Rng>& streams, const json& a) {
  streams.clear();
  for (const auto& e : a) rng_from_json(streams[e.at("env").get<int64_t>()], e.at("rng"));
}

}  // namespace

std::string save_checkpoint(TrainerState& s, Algorithm& algo, const std::string& fingerprint,
                            uint64_t metrics_jsonl_bytes, int keep) {
  char name[64];
  std::snprintf(name, sizeof name, "update_%08ld", static_cast<long>(s.update));
  const fs::path root = fs::path(s.run_dir) / "checkpoints";
  const fs::path final_dir = root / name;
  // This process's shard: its random streams and its environments' states. In a data-parallel
  // run every rank sends them to rank 0, which alone writes the checkpoint.
  const int W = s.group->world_size();
  const auto envs = algo.persistent_envs();
  json shard = {{"trainer_rng", rng_to_json(s.rng)}};
  if (s.per_env_sampling) shard["sampling_streams"] = streams_to_json(s.sampling_streams);
  std::vector<std::vector<std::string>> env_blobs(envs.size());  // [env][rank]
  std::vector<json> shards{shard};
  if (W > 1) {
    std::vector<std::string> dumped = s.group->gather_to_root(shard.dump());
    shards.clear();
    for (const auto& d : dumped) shards.push_back(json::parse(d));
    for (std::size_t k = 0; k < envs.size(); ++k)
      env_blobs[k] = s.group->gather_to_root(envs[k]->supports_state() ? envs[k]->save_state() : std::string());
    if (s.group->rank() != 0) return final_dir.string();
  } else {
    for (std::size_t k = 0; k < envs.size(); ++k)
      if (envs[k]->supports_state()) env_blobs[k].push_back(envs[k]->save_state());
  }
  // An existing folder for this update holds this very state (training is deterministic and a
  // resumed run continues after it): never rewrite it, so `latest` never points at a half folder.
  if (!fs::exists(final_dir / "state.json")) {
    // Written under .tmp-<name> (remove_stale_temporaries sweeps it after a crash), renamed into place.
    make_dirs(root.string());
    AtomicDirectory staged(final_dir.string(), /*overwrite=*/true, (root / (std::string(".tmp-") + name)).string());
    const fs::path tmp = staged.path();
    s.model->save(tmp.string());
    {
      AtomicOutput out((tmp / "optimizer.pt").string());
      torch::save(*s.optimizer, out.temp_path());
      out.commit();
    }
    if (s.reference) s.reference->save_weights((tmp / "ref.pt").string());
    json env_states = json::array();
    for (std::size_t k = 0; k < envs.size(); ++k) {
      if (!envs[k]->supports_state()) {
        env_states.push_back(nullptr);
        continue;
      }
      write_file_atomic((tmp / env_state_file(k)).string(), env_blobs[k].at(0));
      env_states.push_back(env_state_file(k));
    }
    json ranks = json::array();
    for (int r = 0; r < W && W > 1; ++r) {
      json rs = shards.at(r);
      json files = json::array();
      for (std::size_t k = 0; k < envs.size(); ++k) {
        if (!envs[k]->supports_state()) {
          files.push_back(nullptr);
          continue;
        }
        if (r > 0) {
          fs::create_directories(tmp / ("rank_" + std::to_string(r)));
          write_file_atomic((tmp / env_state_file(k, r)).string(), env_blobs[k].at(r));
        }
        files.push_back(env_state_file(k, r));
      }
      rs["env_states"] = files;
      ranks.push_back(rs);
    }
    json recent = json::array();
    for (double r : s.episodes.recent_returns) recent.push_back(r);
    json st = {{"format", "conductor-checkpoint"},
               {"version", kRunFormatVersion},
               {"conductor_version", kConductorVersion},
               {"config_fingerprint", fingerprint},
               {"algo", s.cfg.algo},
               {"update", s.update},
               {"global_step", s.global_step},
               {"episodes", s.episodes.total},
               {"trainer_rng", rng_to_json(s.rng)},
               {"recent_returns", recent},
               {"metrics_jsonl_bytes", metrics_jsonl_bytes},
               {"env_state", env_states.empty() ? json(nullptr) : env_states[0]},
               {"has_ref", static_cast<bool>(s.reference)}};
    if (env_states.size() > 1) st["env_states"] = env_states;
    if (s.per_env_sampling) st["sampling_streams"] = shards.at(0).at("sampling_streams");
    if (W > 1) {  // every rank's shard, rank 0's included (its files are the top-level ones)
      st["world_size"] = W;
      st["ranks"] = ranks;
    }
    // Adapted environment parameters (the budget multiplier): the same in every instance.
    const auto all = algo.all_envs();
    if (!all.empty() && !all[0]->adaptive_state().empty()) st["env_adaptive_state"] = all[0]->adaptive_state();
    write_json_atomic((tmp / "state.json").string(), st);
    staged.commit();
  }
  write_file_atomic((root / "latest").string(), std::string(name) + "\n");
  // Keep the newest `keep` complete checkpoints.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("update_", 0) == 0) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  // Renamed out of the update_* names first, so a SIGKILL during remove_all never leaves a
  // half-deleted folder that still looks like a checkpoint (remove_stale_temporaries sweeps it).
  for (size_t i = 0; i + keep < names.size(); ++i) {
    if (names[i] == name) continue;
    const fs::path doomed = root / (".tmp-pruned-" + names[i]);
    fs::remove_all(doomed);
    fs::rename(root / names[i], doomed);
    fs::remove_all(doomed);
  }
  return final_dir.string();
}

std::vector<std::string> resume_candidates(const std::string& run_dir) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::exists(root / "latest")) {
    std::string name = read_file((root / "latest").string());
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (!name.empty()) out.push_back((root / name).string());
  }
  std::vector<std::string> names;
  if (fs::is_directory(root, ec))
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string n = e.path().filename().string();
      if (e.is_directory() && n.rfind("update_", 0) == 0 && fs::exists(e.path() / "state.json")) names.push_back(n);
    }
  std::sort(names.rbegin(), names.rend());
  for (const auto& n : names)
    if (out.empty() || fs::path(out[0]).filename() != n) out.push_back((root / n).string());
  if (out.empty())
    fail(run_dir, ": no checkpoint to resume from (no checkpoints/latest and no complete checkpoints/update_*)");
  return out;
}

void set_aside_damaged_checkpoint(const std::string& damaged_dir, const std::string& fallback_dir) {
  const fs::path damaged(damaged_dir);
  const fs::path root = damaged.parent_path();
  if (fs::exists(damaged)) {
    const fs::path aside = root / ("damaged-" + damaged.filename().string());
    fs::remove_all(aside);
    fs::rename(damaged, aside);
  }
  write_file_atomic((root / "latest").string(), fs::path(fallback_dir).filename().string() + "\n");
}

void remove_stale_temporaries(const std::string& run_dir) {
  auto sweep = [](const fs::path& dir, std::initializer_list<const char*> prefixes) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return;
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      for (const char* p : prefixes)
        if (n.rfind(p, 0) == 0) stale.push_back(e.path());
    }
    for (const auto& p : stale) fs::remove_all(p);
  };
  sweep(fs::path(run_dir) / "checkpoints", {".tmp-", "latest.tmp."});
  sweep(fs::path(run_dir), {"config.yaml.tmp.", "run.json.tmp.", "final_eval.json.tmp."});
}

ResumedState load_checkpoint(TrainerState& s, Algorithm& algo, const std::string& ckpt,
                             const std::string& fingerprint) {
  ResumedState out;
  const std::string state_path = ckpt + "/state.json";
  const json st = parse_json(read_file(state_path), state_path);
  try {
    if (st.at("format").get<std::string>() != "conductor-checkpoint") fail(state_path, ": not a conductor checkpoint");
    if (st.at("version").get<int>() != kRunFormatVersion)
      fail(state_path, ": checkpoint format version ", st.at("version").get<int>(), " (conductor ",
           st.value("conductor_version", "?"), "); this conductor ", kConductorVersion, " reads version ",
           kRunFormatVersion);
    if (st.at("config_fingerprint").get<std::string>() != fingerprint)
      fail(state_path, ": checkpoint was written by a different config (fingerprint ",
           st.at("config_fingerprint").get<std::string>(), ", this config ", fingerprint, ")");
    const int W = s.group->world_size(), R = s.group->rank();
    const int saved_w = st.value("world_size", 1);
    if (saved_w != W)
      fail(state_path, ": this checkpoint was written by a run of ", saved_w, saved_w == 1 ? " process" : " processes",
           "; this run has ", W, ". Resume with the same number of ranks (e.g. scripts/launch-local ", saved_w,
           " --resume RUN_DIR); re-sharding the environments' states is not supported");
    const json shard = W > 1 ? st.at("ranks").at(R) : st;
    s.update = st.at("update").get<int64_t>();
    s.global_step = st.at("global_step").get<int64_t>();
    s.episodes.total = st.at("episodes").get<int64_t>();
    rng_from_json(s.rng, shard.at("trainer_rng"));
    if (shard.contains("sampling_streams")) {
      s.per_env_sampling = true;
      streams_from_json(s.sampling_streams, shard.at("sampling_streams"));
    }
    s.episodes.recent_returns.clear();
    for (const auto& r : st.at("recent_returns")) s.episodes.recent_returns.push_back(r.get<double>());
    s.model->load(ckpt);
    try {
      torch::load(*s.optimizer, ckpt + "/optimizer.pt");
    } catch (const c10::Error& e) {
      fail(ckpt, "/optimizer.pt: cannot load the optimizer state: ", e.what_without_backtrace());
    }
    if (st.at("has_ref").get<bool>()) {
      s.reference = s.model->frozen_copy();
      s.reference->load_weights(ckpt + "/ref.pt");
    }
    json env_states = W > 1                        ? shard.at("env_states")
                      : st.contains("env_states") ? st["env_states"]
                                                  : json::array({st.at("env_state")});
    const auto envs = algo.persistent_envs();
    for (std::size_t k = 0; k < envs.size(); ++k) {
      const json file = k < env_states.size() ? env_states[k] : json(nullptr);
      if (!file.is_null() && envs[k]->supports_state()) {
        envs[k]->load_state(read_file(ckpt + "/" + file.get<std::string>()));
      } else {
        envs[k]->reset(s.shard_seed(derive_seed(s.cfg.seed, 0xE1, static_cast<uint64_t>(s.update))));
        out.exact = false;
        log_warn("environment '", envs[k]->spec().id,
                 "' cannot snapshot its state; resumed episodes restart from a re-seeded reset, so this resumed run "
                 "will not match an uninterrupted one exactly");
      }
    }
    if (st.contains("env_adaptive_state"))
      for (VectorEnv* e : algo.all_envs()) e->set_adaptive_state(st["env_adaptive_state"].get<std::vector<double>>());
    out.metrics_jsonl_bytes = st.at("metrics_jsonl_bytes").get<uint64_t>();
  } catch (const json::exception& e) {
    fail(state_path, ": invalid checkpoint state: ", e.what());
  }
  return out;
}

}  // namespace conductor
