// `conductor bench ppo`: the throughput of PPO's train() (the real update code) on random data.
#include <chrono>

#include "policies/compute.h"
#include "trainer/algorithm.h"
#include "trainer/train.h"

namespace conductor {

double bench_ppo_update(int batch, int epochs, int minibatch, int obs_dim, int n_actions, int threads, int repeats) {
  set_compute_threads(threads);
  torch::manual_seed(0);
  ConfigDoc doc = ConfigDoc::load_string(
      "env: {id: bandit, num_envs: " + std::to_string(batch) + "}\nppo: {num_steps: 1, num_minibatches: " +
          std::to_string(std::max(1, batch / minibatch)) + ", update_epochs: " + std::to_string(epochs) +
          ", learning_rate: 0.00025}\npolicy: {hidden: [64, 64]}\ntotal_steps: " + std::to_string(batch) + "\n",
      "bench ppo");
  TrainerState s;
  s.cfg = RunConfig::parse(doc.root());
  EnvSpec spec;
  spec.obs_dim = obs_dim;
  spec.n_actions = n_actions;
  s.env_spec = spec;
  s.model = make_policy_model(s.cfg.policy, spec);
  s.optimizer = std::make_unique<torch::optim::Adam>(s.model->parameters(), torch::optim::AdamOptions(2.5e-4).eps(1e-5));
  s.rng.reseed(1);
  auto ppo = make_algorithm(s.cfg);  // algo: ppo (the default)
  RolloutBuffer buf;
  buf.n_actions = n_actions;
  const auto obs = torch::randn({batch, obs_dim}).contiguous();
  buf.obs.dense_dim = obs_dim;
  buf.obs.dense.assign(obs.data_ptr<float>(), obs.data_ptr<float>() + obs.numel());
  buf.obs.rows = batch;
  buf.masks.assign(static_cast<std::size_t>(batch) * n_actions, 1);
  const auto act = torch::randint(0, n_actions, {batch}, torch::kInt64).contiguous();
  buf.actions.assign(act.data_ptr<int64_t>(), act.data_ptr<int64_t>() + batch);
  {
    torch::NoGradGuard ng;
    const auto out = s.model->forward(buf.obs, row_range(0, batch));
    const auto lp = masked_log_probs(out.logits, buf.mask_tensor()).gather(1, act.unsqueeze(1)).squeeze(1).contiguous();
    buf.log_probs.assign(lp.data_ptr<float>(), lp.data_ptr<float>() + batch);
    const auto v = out.value.contiguous();
    buf.values.assign(v.data_ptr<float>(), v.data_ptr<float>() + batch);
  }
  const auto adv = torch::randn({batch}).contiguous(), ret = torch::randn({batch}).contiguous();
  buf.advantages.assign(adv.data_ptr<float>(), adv.data_ptr<float>() + batch);
  buf.returns.assign(ret.data_ptr<float>(), ret.data_ptr<float>() + batch);
  double best = 0.0;
  for (int rep = 0; rep < repeats; ++rep) {
    Metrics m;
    const auto t0 = std::chrono::steady_clock::now();
    ppo->train(s, buf, m);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(batch) * epochs / dt);
  }
  return best;
}

}  // namespace conductor
