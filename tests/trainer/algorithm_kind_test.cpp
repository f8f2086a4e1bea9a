// An algorithm defined outside trainer/ and registered at run time with its own config section: a
// one-step REINFORCE (Williams 1992: loss = -mean(r * log pi(a|x)), no critic, no baseline). Its
// `reinforce:` section is parsed by its own code (unknown keys and out-of-range values rejected with
// the key path), written into the resolved config, checked whichever algorithm runs, and the run
// loop trains it from YAML (`algo: reinforce`) without trainer/ naming it. A built-in algorithm is
// the same code in its own file plus one line in trainer/algorithm.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "envs/episode_loop.h"
#include "tests/test_util.h"
#include "trainer/algorithm.h"
#include "trainer/numerics.h"

namespace conductor {
namespace {

struct ReinforceSettings : AlgorithmSettings {
  double learning_rate = 0.1;
  int num_steps = 1;  // environment steps per sub-environment and update
  static ReinforceSettings parse(ConfigReader r) {
    ReinforceSettings c;
    c.learning_rate = r.get_in<double>("learning_rate", c.learning_rate, 0.0, 10.0);
    c.num_steps = r.get_in<int>("num_steps", c.num_steps, 1, 1000);
    r.finish();
    return c;
  }
};

class Reinforce final : public Algorithm {
 public:
  explicit Reinforce(const RunConfig& cfg)
      : rc_(cfg.algorithm_settings<ReinforceSettings>("reinforce")),
        updates_(std::max<int64_t>(1, cfg.total_steps / (int64_t(cfg.num_envs) * rc_.num_steps))) {}
  double base_learning_rate() const override { return rc_.learning_rate; }
  double adam_eps() const override { return 1e-8; }
  double reference_kl_coef() const override { return 0.0; }
  void build_envs(const RunConfig& cfg) override { env_ = cfg.make_env_instance(cfg.num_envs); }
  void reset_envs(uint64_t seed) override { env_->reset(seed); }
  std::vector<VectorEnv*> persistent_envs() override { return {env_.get()}; }
  std::vector<VectorEnv*> all_envs() override { return {env_.get()}; }
  double learning_rate(const TrainerState&) const override { return rc_.learning_rate; }
  bool finished(const TrainerState& s) const override { return s.update >= updates_; }
  int64_t planned_updates(const RunConfig&) const override { return updates_; }

  void collect_rollouts(TrainerState& s, RolloutBuffer& buf) override {
    const int N = env_->num_envs(), A = s.env_spec.n_actions;
    buf.clear();
    buf.n_actions = A;
    int t = 0;
    run_env_loop(
        *env_,
        [&](const ObsBatch& obs, int32_t* actions) {
          const int64_t row0 = buf.size();
          s.model->encode(obs, buf.obs);
          torch::NoGradGuard ng;
          const auto lp = masked_log_probs(s.model->logits(buf.obs, row_range(row0, row0 + N)),
                                           mask_to_tensor(obs.mask, N, A)).contiguous();
          const auto p = lp.exp().contiguous();
          for (int i = 0; i < N; ++i) {
            actions[i] = sample_masked(p.data_ptr<float>() + int64_t(i) * A, obs.mask + int64_t(i) * A, A,
                                       s.action_uniform(s.first_env + i));
            buf.add_step_row(obs, i, actions[i], lp.data_ptr<float>()[int64_t(i) * A + actions[i]]);
          }
        },
        [&](VectorEnv& env, const int32_t*) {
          for (int i = 0; i < N; ++i) buf.advantages.push_back(env.reward()[i]);  // one-step episodes
          for (const auto& r : env.finished()) s.episodes.record(r);
          s.global_step += N;
          ++t;
        },
        [&] { return t >= rc_.num_steps; }, rc_.num_steps, "reinforce rollout");
  }

  void train(TrainerState& s, RolloutBuffer& buf, Metrics& m) override {
    const int64_t B = buf.size();
    const auto lp = masked_log_probs(s.model->logits(buf.obs, row_range(0, B)), buf.mask_tensor())
                        .gather(1, buf.action_tensor().unsqueeze(1))
                        .squeeze(1);
    const auto loss = -(buf.advantage_tensor() * lp).mean();
    m.set("losses/policy_loss", loss.item<double>());
    m.set("reinforce/learning_rate", rc_.learning_rate);
    s.optimizer_step(loss, s.model->policy_parameters(), 0.0);
  }

 private:
  ReinforceSettings rc_;
  int64_t updates_;
  std::unique_ptr<VectorEnv> env_;
};

AlgorithmKind reinforce_kind() {
  AlgorithmKind k;
  k.section = "reinforce";
  k.parse = [](ConfigReader r) -> std::shared_ptr<const AlgorithmSettings> {
    return std::make_shared<ReinforceSettings>(ReinforceSettings::parse(r));
  };
  k.make = [](const RunConfig& cfg) -> std::unique_ptr<Algorithm> { return std::make_unique<Reinforce>(cfg); };
  return k;
}

const char* kBanditReinforce = R"(
seed: 3
env: {id: bandit, num_envs: 64, n_contexts: 4, n_actions: 5, masked_trap: true, noise: 0.1}
policy: {kind: mlp, hidden: [16]}
algo: reinforce
reinforce: {learning_rate: 0.05, num_steps: 2}
total_steps: 12800
checkpoint_every: 0
log: {console: false}
)";

std::string error_of(const std::string& yaml, const std::vector<std::string>& sets) {
  try {
    ConfigDoc doc = ConfigDoc::load_string(yaml, "run.yaml");
    doc.apply_overrides(sets);
    check_run_config(doc);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(AlgorithmKinds, AnAlgorithmRegisteredOutsideTrainerOwnsItsSectionAndTrains) {
  register_algorithm("reinforce", reinforce_kind());
  const auto ids = algorithm_ids();
  EXPECT_NE(std::find(ids.begin(), ids.end(), "reinforce"), ids.end());

  // The section is the algorithm's: parsed by its code, with its keys and ranges.
  EXPECT_EQ(error_of(kBanditReinforce, {}), "<no error>");
  EXPECT_NE(error_of(kBanditReinforce, {"reinforce.lr=0.1"}).find("unknown key 'reinforce.lr'; valid keys under 'reinforce': "),
            std::string::npos);
  EXPECT_NE(error_of(kBanditReinforce, {"reinforce.num_steps=0"}).find("key 'reinforce.num_steps': value 0 out of range"),
            std::string::npos);
  // Checked whichever algorithm runs, as ppo's and grpo's sections are.
  EXPECT_NE(error_of(kBanditReinforce, {"algo=ppo", "ppo.num_minibatches=1", "reinforce.lr=0.1"}).find("reinforce.lr"),
            std::string::npos);

  ConfigDoc doc = ConfigDoc::load_string(kBanditReinforce, "reinforce.yaml");
  TrainOptions opt;
  opt.run_dir = testing::temp_dir() + "/run";
  opt.console = false;
  const TrainResult r = run_training(doc, opt);
  EXPECT_EQ(r.updates, 12800 / (64 * 2));
  EXPECT_EQ(r.global_step, 12800);
  EXPECT_DOUBLE_EQ(r.last.get("reinforce/learning_rate"), 0.05);
  // The resolved config holds the section with its values (and is what a resume reads).
  const std::string resolved = read_file(opt.run_dir + "/config.yaml");
  EXPECT_NE(resolved.find("reinforce:"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("num_steps: 2"), std::string::npos) << resolved;
  // It learns: the share of optimal actions of the last update is far above the first's.
  std::ifstream f(opt.run_dir + "/metrics.jsonl");
  std::string line, first, last;
  while (std::getline(f, line))
    if (line.find("\"charts/optimal\"") != std::string::npos) (first.empty() ? first : last) = line;
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(last.empty());
  const double opt_first = json::parse(first).at("charts/optimal").get<double>();
  const double opt_last = json::parse(last).at("charts/optimal").get<double>();
  EXPECT_GT(opt_last, opt_first + 0.2) << "first " << opt_first << ", last " << opt_last;
}

}  // namespace
}  // namespace conductor
