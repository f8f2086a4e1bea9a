#include "trainer/run_config.h"

#include <algorithm>
#include <cstdio>

#include "core/hash.h"
#include "envs/registry.h"
#include "trainer/algorithm.h"

namespace conductor {



BcConfig BcConfig::parse(ConfigReader r) {
  BcConfig c;
  c.enabled = r.get<bool>("enabled", c.enabled);
  c.samples = r.get_in<int>("samples", c.samples, 1, 1 << 26);
  c.epochs = r.get_in<int>("epochs", c.epochs, 1, 100000);
  c.minibatch_size = r.get_in<int>("minibatch_size", c.minibatch_size, 1, 1 << 24);
  c.learning_rate = r.get_in<double>("learning_rate", c.learning_rate, 0.0, 10.0);
  const std::string expert = r.get_choice("expert", expert_name(c.expert), expert_names());
  c.expert = static_cast<Expert>(std::find(expert_names().begin(), expert_names().end(), expert) - expert_names().begin());
  c.logs = r.get<std::string>("logs", c.logs);
  c.logs_where = r.where("logs");
  c.weighting = r.get_choice("weighting", c.weighting, {"advantage", "uniform"});
  c.beta = r.get_in<double>("beta", c.beta, 1e-3, 1e3);
  c.importance = r.get<bool>("importance", c.importance);
  c.max_weight = r.get_in<double>("max_weight", c.max_weight, 1.0, 1e9);
  r.finish();
  return c;
}

LogConfig LogConfig::parse(ConfigReader r) {
  LogConfig c;
  c.jsonl = r.get<bool>("jsonl", c.jsonl);
  c.tensorboard = r.get<bool>("tensorboard", c.tensorboard);
  c.console = r.get<bool>("console", c.console);
  c.console_every = r.get_in<int>("console_every", c.console_every, 1, 1 << 30);
  r.finish();
  return c;
}

FinalEvalConfig FinalEvalConfig::parse(ConfigReader r) {
  FinalEvalConfig c;
  c.enabled = r.get<bool>("enabled", c.enabled);
  c.set = r.get<std::vector<std::string>>("set", c.set);
  for (const auto& s : c.set)
    if (s.find('=') == std::string::npos) r.fail_at("set", "expected key=value entries, got '" + s + "'");
  c.episodes = r.get_in<int>("episodes", c.episodes, 1, 1 << 28);
  r.finish();
  return c;
}

RunConfig RunConfig::parse(ConfigReader r) {
  RunConfig c;
  c.seed = r.get<uint64_t>("seed", c.seed);
  ConfigReader env = r.child("env");
  c.env_id = env.required<std::string>("id");
  c.num_envs = env.get_in<int>("num_envs", c.num_envs, 1, 1 << 20);
  c.env_cfg = env;
  c.policy = PolicyConfig::parse(r.child("policy"));
  c.algo = r.get_choice("algo", c.algo, algorithm_ids());
  // Each algorithm's own section, parsed by its own code (trainer/algorithm_registry.h).
  for (const std::string& id : algorithm_ids_in_order()) {
    const AlgorithmKind kind = algorithm_kind(id);
    if (!kind.section.empty()) c.algo_settings[id] = kind.parse(r.child(kind.section));
  }
  c.bc = BcConfig::parse(r.child("bc_warmstart"));
  if (!c.bc.logs.empty() && !c.bc.enabled)
    r.child("bc_warmstart").fail_at("logs", "is set but bc_warmstart.enabled is false: set enabled: true to warm-start from the logs");
  c.total_steps = r.get_in<int64_t>("total_steps", c.total_steps, 1, int64_t(1) << 50);
  c.checkpoint_every = r.get_in<int>("checkpoint_every", c.checkpoint_every, 0, 1 << 30);
  c.checkpoint_keep = r.get_in<int>("checkpoint_keep", c.checkpoint_keep, 1, 1 << 20);
  if (c.checkpoint_keep < 2)
    r.fail_at("checkpoint_keep", "value " + std::to_string(c.checkpoint_keep) +
                                     " is too small: expected at least 2 (a resume falls back to the previous "
                                     "checkpoint when the newest is damaged)");
  c.threads = r.get_in<int>("threads", c.threads, 1, 1024);
  c.log = LogConfig::parse(r.child("log"));
  c.final_eval = FinalEvalConfig::parse(r.child("final_eval"));
  make_algorithm(c);  // the algorithm checks its own constraints (ppo: minibatches divide the batch)
  r.finish();
  return c;
}

std::unique_ptr<VectorEnv> RunConfig::make_env_instance(int n) const {
  ConfigReader env = *env_cfg;
  return make_env(env_id, env, n);
}

void check_env_offers(const RunConfig& cfg, VectorEnv& env) {
  if (!cfg.bc.logs.empty() && !env.logged_replay())
    throw ConfigError(cfg.bc.logs_where + ": needs an environment that replays logged decisions (env.id conductor: "
                      "the logged decisions are conductor calls); this run's env is '" + cfg.env_id + "'");
}

void check_run_config(const ConfigDoc& doc) {
  RunConfig cfg = RunConfig::parse(doc.root());
  auto env = cfg.make_env_instance(1);
  check_env_offers(cfg, *env);
}

std::string config_fingerprint(const std::string& resolved_yaml) {
  // The `log` section only changes how progress is shown, never the training: leave it out, so a
  // run can be resumed with, e.g., --set log.console=false.
  YAML::Node doc = YAML::Load(resolved_yaml);
  if (doc.IsMap() && doc["log"]) doc.remove("log");
  YAML::Emitter out;
  out << doc;
  // The offset basis of the first release (not FNV's standard one) is kept: fingerprints of
  // existing runs stay valid, so they can still be resumed.
  const uint64_t h = fnv1a64(out.c_str(), 1469598103934665603ULL);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace conductor
