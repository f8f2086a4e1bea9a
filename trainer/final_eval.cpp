// After training: the greedy policy and the env's best fixed strategy (expert_actions) on the same
// episodes of an evaluation variant of the environment (the run config with final_eval.set
// overrides, one sub-environment so the episode sequence is fixed).
#include "trainer/final_eval.h"

#include <algorithm>

#include "core/error.h"
#include "envs/episode_loop.h"

namespace conductor {

int64_t final_eval_step_cap(int episodes, int max_episode_steps, std::size_t pass_queries) {
  const int64_t runs = pass_queries > 0 ? static_cast<int64_t>(pass_queries) + 1 : int64_t(episodes);
  return runs * std::max(1, max_episode_steps) * 4 + 100000;
}

Metrics final_evaluation(TrainerState& s, const std::string& resolved_yaml) {
  ConfigDoc doc = ConfigDoc::load_string(resolved_yaml, s.run_dir + "/config.yaml (final_eval)");
  doc.apply_overrides(s.cfg.final_eval.set);
  doc.apply_override("env.num_envs=1");
  const RunConfig ecfg = RunConfig::parse(doc.root());
  const int episodes = s.cfg.final_eval.episodes;
  // One pass: false when the environment has no expert strategy.
  auto run_one = [&](bool expert, EpisodeLog& log) -> bool {
    auto env = ecfg.make_env_instance(1);
    const EnvSpec& sp = env->spec();
    if (sp.obs_dim != s.env_spec.obs_dim || sp.n_actions != s.env_spec.n_actions)
      fail("final_eval: the evaluation environment has obs_dim ", sp.obs_dim, " and ", sp.n_actions,
           " actions; the policy was trained on ", s.env_spec.obs_dim, " and ", s.env_spec.n_actions);
    int pass_idx = -1;
    for (size_t k = 0; k < sp.extra_names.size(); ++k)
      if (sp.extra_names[k] == "pass") pass_idx = static_cast<int>(k);
    log.begin_update(sp.extra_names);
    env->reset(derive_seed(s.cfg.seed, 0xE7A1));
    // One pass over the split can be far longer than `episodes` (80k test queries of a large trace
    // set): the cap follows what the loop runs until.
    const std::size_t pass_queries = pass_idx >= 0 ? env->pass_size() : 0;
    const int64_t max_steps = final_eval_step_cap(episodes, sp.max_episode_steps, pass_queries);
    bool has_expert = true, done = false;
    EncodedObs enc;
    run_env_loop(
        *env,
        [&](const ObsBatch& obs, int32_t* a) {
          if (expert) {
            has_expert = env->expert_actions(a);
            if (!has_expert)  // the loop ends after this step: take any allowed action
              for (a[0] = 0; a[0] + 1 < sp.n_actions && !obs.mask[a[0]];) ++a[0];
            return;
          }
          enc.clear();
          s.model->encode(obs, enc);
          torch::NoGradGuard ng;
          const auto lp = masked_log_probs(s.model->logits(enc, row_range(0, 1)), mask_to_tensor(obs.mask, 1, sp.n_actions));
          a[0] = static_cast<int32_t>(lp.argmax(1).item<int64_t>());
        },
        [&](VectorEnv& e, const int32_t*) {
          for (const auto& r : e.finished()) {
            if (pass_idx >= 0 && r.extras[pass_idx] >= 1.0) {  // one full pass of the split
              done = true;
              return;
            }
            log.record(r);
            if (pass_idx < 0 && log.count() >= episodes) {
              done = true;
              return;
            }
          }
        },
        [&] { return done || !has_expert; }, max_steps, "final_eval");
    return has_expert;
  };
  Metrics m;
  m.update = s.update;
  m.global_step = s.global_step;
  EpisodeLog pol, exp;
  run_one(false, pol);
  pol.write_episodes(m, "eval/");
  if (run_one(true, exp)) exp.write_episodes(m, "eval/expert_");
  return m;
}

}  // namespace conductor
