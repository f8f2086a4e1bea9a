#include "trainer/run_config.h"

#include <cstdio>

#include "core/hash.h"
#include "envs/registry.h"
#include "trainer/algorithm.h"

namespace conductor {

PpoConfig PpoConfig::parse(ConfigReader r) {
  PpoConfig c;
  c.num_steps = r.get_in<int>("num_steps", c.num_steps, 1, 1 << 20);
  c.learning_rate = r.get_in<double>("learning_rate", c.learning_rate, 0.0, 10.0);
  c.anneal_lr = r.get<bool>("anneal_lr", c.anneal_lr);
  c.gamma = r.get_in<double>("gamma", c.gamma, 0.0, 1.0);
  c.gae_lambda = r.get_in<double>("gae_lambda", c.gae_lambda, 0.0, 1.0);
  c.num_minibatches = r.get_in<int>("num_minibatches", c.num_minibatches, 1, 1 << 20);
  c.update_epochs = r.get_in<int>("update_epochs", c.update_epochs, 1, 10000);
  c.norm_adv = r.get<bool>("norm_adv", c.norm_adv);
  c.clip_coef = r.get_in<double>("clip_coef", c.clip_coef, 0.0, 10.0);
  c.clip_vloss = r.get<bool>("clip_vloss", c.clip_vloss);
  c.ent_coef = r.get_in<double>("ent_coef", c.ent_coef, 0.0, 100.0);
  c.vf_coef = r.get_in<double>("vf_coef", c.vf_coef, 0.0, 100.0);
  c.max_grad_norm = r.get_in<double>("max_grad_norm", c.max_grad_norm, 0.0, 1e9);
  c.target_kl = r.get_in<double>("target_kl", c.target_kl, 0.0, 1e9);
  c.adam_eps = r.get_in<double>("adam_eps", c.adam_eps, 0.0, 1.0);
  c.ref_kl_coef = r.get_in<double>("ref_kl_coef", c.ref_kl_coef, 0.0, 1e6);
  c.where = r.where("num_minibatches");
  r.finish();
  return c;
}

GrpoConfig GrpoConfig::parse(ConfigReader r) {
  GrpoConfig c;
  c.group_size = r.get_in<int>("group_size", c.group_size, 2, 1 << 16);
  c.learning_rate = r.get_in<double>("learning_rate", c.learning_rate, 0.0, 10.0);
  c.anneal_lr = r.get<bool>("anneal_lr", c.anneal_lr);
  c.update_epochs = r.get_in<int>("update_epochs", c.update_epochs, 1, 10000);
  c.num_minibatches = r.get_in<int>("num_minibatches", c.num_minibatches, 1, 1 << 20);
  c.clip_coef = r.get_in<double>("clip_coef", c.clip_coef, 0.0, 10.0);
  c.ent_coef = r.get_in<double>("ent_coef", c.ent_coef, 0.0, 100.0);
  c.kl_coef = r.get_in<double>("kl_coef", c.kl_coef, 0.0, 1e6);
  c.max_grad_norm = r.get_in<double>("max_grad_norm", c.max_grad_norm, 0.0, 1e9);
  c.adam_eps = r.get_in<double>("adam_eps", c.adam_eps, 0.0, 1.0);
  c.scale_rewards = r.get_choice("scale_rewards", c.scale_rewards, {"group", "batch", "none"});
  c.loss_agg = r.get_choice("loss_agg", c.loss_agg, {"step", "episode", "constant"});
  r.finish();
  return c;
}

BcConfig BcConfig::parse(ConfigReader r) {
  BcConfig c;
  c.enabled = r.get<bool>("enabled", c.enabled);
  c.samples = r.get_in<int>("samples", c.samples, 1, 1 << 26);
  c.epochs = r.get_in<int>("epochs", c.epochs, 1, 100000);
  c.minibatch_size = r.get_in<int>("minibatch_size", c.minibatch_size, 1, 1 << 24);
  c.learning_rate = r.get_in<double>("learning_rate", c.learning_rate, 0.0, 10.0);
  c.expert = r.get_choice("expert", c.expert, {"best_fixed", "per_task", "router"});
  c.logs = r.get<std::string>("logs", c.logs);
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
  c.ppo = PpoConfig::parse(r.child("ppo"));
  c.grpo = GrpoConfig::parse(r.child("grpo"));
  c.bc = BcConfig::parse(r.child("bc_warmstart"));
  if (!c.bc.logs.empty()) {
    ConfigReader bc = r.child("bc_warmstart");
    if (c.algo == "bc")
      bc.fail_at("logs", "algo bc imitates the environment's expert; a warm start from logged decisions runs "
                         "before ppo or grpo (algo: ppo, bc_warmstart: {enabled: true, logs: ...})");
    if (!c.bc.enabled)
      bc.fail_at("logs", "is set but bc_warmstart.enabled is false: set enabled: true to warm-start from the logs");
    if (c.env_id != "conductor")
      bc.fail_at("logs", "needs env.id conductor (the logged decisions are conductor calls); this run's env is '" +
                             c.env_id + "'");
  }
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

void check_run_config(const ConfigDoc& doc) {
  RunConfig cfg = RunConfig::parse(doc.root());
  auto env = cfg.make_env_instance(1);
  (void)env;
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
