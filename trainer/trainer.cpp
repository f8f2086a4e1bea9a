// The run loop: build the algorithm, its environments and the policy; resume or start; optional
// behaviour-cloning warm start; then per update collect_rollouts -> train -> adapt the environments
// -> metrics -> checkpoint; stop on SIGINT/SIGTERM (checkpoint first); final evaluation.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/json_util.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/version.h"
#include "policies/compute.h"
#include "trainer/algorithm.h"
#include "trainer/checkpoint.h"
#include "trainer/final_eval.h"
#include "trainer/train.h"

namespace conductor {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sums every environment's adaptation statistics (over instances and processes) and adapts them all.
void adapt_environments(TrainerState& s, Algorithm& algo, Metrics& m) {
  const auto envs = algo.all_envs();
  std::vector<double> stats;
  for (VectorEnv* e : envs) {
    const auto st = e->adaptation_stats();
    if (stats.empty()) stats.assign(st.size(), 0.0);
    for (std::size_t k = 0; k < st.size() && k < stats.size(); ++k) stats[k] += st[k];
  }
  if (stats.empty()) return;
  s.group->sum(stats);
  std::vector<std::pair<std::string, double>> report;
  for (std::size_t i = 0; i < envs.size(); ++i) envs[i]->adapt(stats, i == 0 ? &report : nullptr);
  for (const auto& [name, v] : report) m.set(name, v);
}

// Data-parallel runs: the losses/* metrics become their means over the ranks (rank 0 writes them).
void average_losses(ProcessGroup& group, Metrics& m) {
  if (group.world_size() == 1) return;
  std::vector<double> v;
  for (const auto& [name, value] : m.values)
    if (name.rfind("losses/", 0) == 0) v.push_back(value);
  group.sum(v);
  std::size_t k = 0;
  for (auto& [name, value] : m.values)
    if (name.rfind("losses/", 0) == 0) value = v[k++] / group.world_size();
}

class Trainer {
 public:
  Trainer(RunConfig cfg, const TrainOptions& opt, std::string fingerprint, std::string resolved_yaml)
      : fingerprint_(std::move(fingerprint)), resolved_yaml_(std::move(resolved_yaml)) {
    s_.cfg = std::move(cfg);
    s_.options = opt;
    s_.run_dir = opt.run_dir;
    if (opt.group) s_.group = opt.group;
    s_.cfg.world_size = s_.group->world_size();
    s_.per_env_sampling = opt.per_env_sampling || s_.group->world_size() > 1;
  }
  TrainResult run(bool resume);

 private:
  void build();
  void emit(const Metrics& m) {
    if (jsonl_) jsonl_->write(m);
    for (auto& sink : sinks_) sink->write(m);
  }
  std::string checkpoint() {
    if (jsonl_) jsonl_->flush();
    return save_checkpoint(s_, *algo_, fingerprint_, jsonl_ ? jsonl_->bytes_written() : 0, s_.cfg.checkpoint_keep);
  }

  TrainerState s_;
  std::unique_ptr<Algorithm> algo_;
  std::string fingerprint_, resolved_yaml_;
  std::unique_ptr<JsonlSink> jsonl_;
  std::vector<std::unique_ptr<MetricsSink>> sinks_;
  bool resume_exact_ = true;
};

void Trainer::build() {
  algo_ = make_algorithm(s_.cfg);
  algo_->build_envs(s_.cfg);
  s_.first_env = int64_t(s_.group->rank()) * s_.cfg.num_envs;
  for (VectorEnv* e : algo_->all_envs()) s_.shard(*e);
  if (!s_.envs_indexed && s_.group->rank() == 0)
    log_warn("environment '", algo_->all_envs().at(0)->spec().id,
             "' cannot index its sub-environments globally: each rank's shard is seeded from the rank, so the "
             "episodes differ from a single-process run's (docs/distributed.md)");
  s_.env_spec = algo_->all_envs().at(0)->spec();
  set_compute_threads(s_.cfg.threads);
  torch::manual_seed(derive_seed(s_.cfg.seed, 0x1A17));  // weight initialization only
  s_.model = make_policy_model(s_.cfg.policy, s_.env_spec);
  s_.optimizer = std::make_unique<torch::optim::Adam>(
      s_.model->parameters(), torch::optim::AdamOptions(algo_->base_learning_rate()).eps(algo_->adam_eps()));
  s_.rng.reseed(derive_seed(s_.cfg.seed, 0x7A1));
}

TrainResult Trainer::run(bool resume) {
  const auto t0 = std::chrono::steady_clock::now();
  build();
  TrainResult res;
  res.run_dir = s_.run_dir;
  const bool writer = s_.group->rank() == 0;  // rank 0 alone writes the run folder
  if (resume) {
    if (writer) remove_stale_temporaries(s_.run_dir);
    // The newest checkpoint, or when it cannot be loaded (a truncated or damaged file) the newest
    // one that can: checkpoint_keep >= 2 keeps one to fall back to, as LevelDB keeps its previous
    // manifest.
    const std::vector<std::string> candidates = resume_candidates(s_.run_dir);
    std::string ckpt, reasons;
    ResumedState r;
    std::size_t loaded = 0;
    for (; loaded < candidates.size() && ckpt.empty(); ++loaded) {
      try {
        r = load_checkpoint(s_, *algo_, candidates[loaded], fingerprint_);
        ckpt = candidates[loaded];
      } catch (const std::exception& e) {
        reasons += std::string(reasons.empty() ? "" : "; ") + e.what();
        if (loaded + 1 == candidates.size())
          fail(s_.run_dir, ": cannot resume: no checkpoint can be loaded (", reasons, ")");
        log_warn("resume: ", candidates[loaded], " cannot be loaded (", e.what(), "); trying the previous complete "
                 "checkpoint ", fs::path(candidates[loaded + 1]).filename().string());
      }
    }
    // Only once one loaded: the ones that did not are damaged (not, say, of another world size).
    for (std::size_t i = 0; i + 1 < loaded; ++i) {
      log_warn("resume: falling back to ", fs::path(ckpt).filename().string(), "; the damaged ",
               fs::path(candidates[i]).filename().string(), " is kept as checkpoints/damaged-",
               fs::path(candidates[i]).filename().string());
      if (writer) set_aside_damaged_checkpoint(candidates[i], ckpt);
    }
    resume_exact_ = r.exact;
    if (s_.cfg.log.jsonl && writer)
      jsonl_ = std::make_unique<JsonlSink>(s_.run_dir + "/metrics.jsonl", r.metrics_jsonl_bytes);
    log_info("resuming ", s_.run_dir, " from ", fs::path(ckpt).filename().string(), " (update ", s_.update, ", ",
             s_.global_step, " steps)");
  } else {
    algo_->reset_envs(s_.shard_seed(derive_seed(s_.cfg.seed, 0xE0)));
    if (s_.cfg.log.jsonl && writer) jsonl_ = std::make_unique<JsonlSink>(s_.run_dir + "/metrics.jsonl", 0);
  }
  const int64_t planned = algo_->planned_updates(s_.cfg);
  if (s_.cfg.log.tensorboard && writer) sinks_.push_back(std::make_unique<TensorBoardSink>(s_.run_dir));
  if (s_.cfg.log.console && s_.options.console && writer)
    sinks_.push_back(std::make_unique<ConsoleSink>(s_.cfg.total_steps, planned, s_.cfg.log.console_every));

  StopSignals signals;
  if (!resume) {
    if (s_.cfg.bc.enabled) {
      const bool logged = !s_.cfg.bc.logs.empty();
      const Metrics m = logged ? logged_warm_start(s_, resolved_yaml_) : bc_warm_start(s_);
      emit(m);
      if (s_.options.console)
        log_info("bc warm start: ", static_cast<int64_t>(m.get("bc/samples")), logged ? " logged" : " expert",
                 " samples, loss ", m.get("bc/loss"), ", accuracy ", m.get("bc/accuracy"));
    }
    if (algo_->reference_kl_coef() > 0) s_.reference = s_.model->frozen_copy();
  }
  RolloutBuffer buffer;
  int64_t updates_this_process = 0;
  auto last_t = std::chrono::steady_clock::now();
  int64_t last_steps = s_.global_step;
  while (!algo_->finished(s_)) {
    ++s_.update;
    const double lr = algo_->learning_rate(s_);
    set_learning_rate(*s_.optimizer, lr);
    s_.episodes.begin_update(s_.env_spec.extra_names);
    algo_->collect_rollouts(s_, buffer);
    Metrics m;
    m.update = s_.update;
    m.global_step = s_.global_step;
    s_.episodes.reduce(*s_.group);
    s_.episodes.write(m, lr);
    algo_->train(s_, buffer, m);
    average_losses(*s_.group, m);
    adapt_environments(s_, *algo_, m);
    for (const auto& [name, value] : s_.model->take_stats()) m.set(name, value);
    const double dt = seconds_since(last_t);
    last_t = std::chrono::steady_clock::now();
    m.set("time/steps_per_s", dt > 0 ? (s_.global_step - last_steps) / dt : 0.0);
    m.set("time/elapsed_s", seconds_since(t0));
    last_steps = s_.global_step;
    emit(m);
    res.last = m;
    ++updates_this_process;
    bool stop = StopSignals::received() != 0 ||
                (s_.options.stop_after_updates >= 0 && updates_this_process >= s_.options.stop_after_updates);
    if (s_.group->world_size() > 1) {  // a signal reaches the ranks at different updates: stop together
      std::vector<double> any{stop ? 1.0 : 0.0};
      s_.group->sum(any);
      stop = any[0] > 0;
    }
    if (stop) {
      res.interrupted = true;
      break;
    }
    if (s_.cfg.checkpoint_every > 0 && s_.update % s_.cfg.checkpoint_every == 0 && !algo_->finished(s_))
      res.checkpoint_dir = checkpoint();
  }
  if (StopSignals::received() != 0) res.interrupted = true;
  for (auto& sink : sinks_) sink->flush();
  res.checkpoint_dir = checkpoint();
  res.updates = s_.update;
  res.global_step = s_.global_step;
  res.wall_seconds = seconds_since(t0);
  res.resume_exact = resume_exact_;
  if (s_.cfg.final_eval.enabled && !res.interrupted && writer) {
    res.final_eval = final_evaluation(s_, resolved_yaml_);
    json j = json::object();
    for (const auto& kv : res.final_eval.values) j[kv.first] = std::isfinite(kv.second) ? json(kv.second) : json(nullptr);
    j["set"] = s_.cfg.final_eval.set;
    write_json_atomic(s_.run_dir + "/final_eval.json", j);
  }
  return res;
}

// The resolved config's lines without the leading comment and the `log` block (not compared).
std::vector<std::string> comparable_lines(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string line;
  bool in_log = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    if (!line.empty() && line[0] != ' ') in_log = line.rfind("log:", 0) == 0;
    if (!in_log) out.push_back(line);
  }
  return out;
}

std::string first_difference(const std::string& a, const std::string& b) {
  const auto la = comparable_lines(a), lb = comparable_lines(b);
  for (size_t i = 0; i < std::max(la.size(), lb.size()); ++i) {
    const std::string x = i < la.size() ? la[i] : "<end>", y = i < lb.size() ? lb[i] : "<end>";
    if (x != y) return "run has '" + x + "', this config has '" + y + "'";
  }
  return "same keys, different values";
}

}  // namespace

ConfigDoc load_run_config(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const std::string path = run_dir + "/config.yaml";
  if (!fs::exists(path)) fail(run_dir, ": not a conductor run folder (no config.yaml)");
  ConfigDoc doc = ConfigDoc::load_file(path);
  doc.apply_overrides(overrides);
  return doc;
}

TrainResult run_training(const ConfigDoc& doc, const TrainOptions& options) {
  RunConfig cfg = RunConfig::parse(doc.root());
  // Build one env instance now so the env's own keys are read (and checked) before config.yaml
  // is written; the trainer builds its own instances.
  check_env_offers(cfg, *cfg.make_env_instance(1));
  const std::string resolved = doc.resolved_yaml();
  const std::string fp = config_fingerprint(resolved);
  const std::string& dir = options.run_dir;
  if (dir.empty()) fail("train: no run folder given");
  const std::string run_json = dir + "/run.json";
  // A fresh start that fails before its first checkpoint leaves nothing to resume: what it added to
  // the folder is removed, so a retry with the same --out starts again instead of being told the
  // folder "already holds a run".
  bool fresh = false, folder_existed = false;
  std::set<std::string> entries_before;
  if (options.group && options.group->rank() != 0) {
    // Rank 0 checks and writes the run folder; the others only read checkpoints when resuming.
  } else if (options.resume) {
    if (!fs::exists(run_json)) fail(dir, ": not a conductor run folder (no run.json); nothing to resume");
    const json rj = parse_json(read_file(run_json), run_json);
    const int version = rj.value("version", -1);
    if (rj.value("format", "") != "conductor-run" || version != kRunFormatVersion)
      fail(run_json, ": run format version ", version, " written by conductor ", rj.value("conductor_version", "?"),
           "; this conductor ", kConductorVersion, " resumes version ", kRunFormatVersion, " only");
    if (rj.value("config_fingerprint", "") != fp) {
      std::string saved;
      try {
        saved = read_file(dir + "/config.yaml");
      } catch (const Error&) {
      }
      fail(dir, ": cannot resume: this run was started from a different config (",
           first_difference(saved, resolved), "); resume with `conductor train --resume ", dir,
           "` (its own config.yaml) or start a new run folder");
    }
  } else {
    if (fs::exists(run_json))
      fail(dir, ": already holds a run; resume it with --resume or choose another --out folder");
    fresh = true;
    folder_existed = fs::exists(dir);
    if (folder_existed)
      for (const auto& e : fs::directory_iterator(dir)) entries_before.insert(e.path().filename().string());
    make_dirs(dir);
    write_file_atomic(dir + "/config.yaml", resolved);
    write_json_atomic(run_json, json{{"format", "conductor-run"},
                                     {"version", kRunFormatVersion},
                                     {"conductor_version", kConductorVersion},
                                     {"seed", cfg.seed},
                                     {"config_fingerprint", fp},
                                     {"env", cfg.env_id},
                                     {"algo", cfg.algo}});
  }
  try {
    Trainer trainer(std::move(cfg), options, fp, resolved);
    return trainer.run(options.resume);
  } catch (...) {
    if (fresh && !fs::exists(fs::path(dir) / "checkpoints" / "latest")) {
      std::error_code ec;
      if (!folder_existed) {
        fs::remove_all(dir, ec);
      } else {
        std::vector<fs::path> added;
        for (const auto& e : fs::directory_iterator(dir, ec))
          if (!entries_before.count(e.path().filename().string())) added.push_back(e.path());
        for (const auto& p : added) fs::remove_all(p, ec);
      }
      log_warn("train: the run failed before its first checkpoint; removed what it had written to ", dir,
               " (nothing to resume), so the same command can be run again");
    }
    throw;
  }
}

}  // namespace conductor
