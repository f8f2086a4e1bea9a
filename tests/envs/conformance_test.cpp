// The conformance suite on the conductor environment over the synthetic world (built through the
// registry, as a run config would), on every reward model, and a check that the suite can fail.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "core/config.h"
#include "envs/conductor_env.h"
#include "envs/conformance.h"
#include "envs/registry.h"
#include "tests/envs/conductor_fixtures.h"

namespace conductor {
namespace {

std::unique_ptr<VectorEnv> from_registry(const std::string& yaml, int n) {
  ConfigDoc doc = ConfigDoc::load_string(yaml, "env.yaml");
  ConfigReader r = doc.root();
  return make_env("conductor", r, n);
}

TEST(Conformance, ConductorOnSyntheticWorld) {
  testing::EnvConformanceOptions o;
  o.steps = 800;
  testing::check_env_conformance(
      [] {
        return from_registry(
            "synthetic: {queries: 300, seed: 3}\nmax_steps: 4\npool: {randomize: true, min_size: 2}\n"
            "reward: {w_cost: 50, w_latency: 0.01}\n"
            "faults:\n  - {type: outage, worker: all, rate: 0.02, duration: 5}\n",
            8);
      },
      o);
}

TEST(Conformance, ConductorSequentialEvaluation) {
  testing::check_env_conformance(
      [] { return from_registry("synthetic: {queries: 200, seed: 5}\nsplit: test\nmode: sequential\nmax_steps: 2\n", 4); },
      [] {
        testing::EnvConformanceOptions o;
        o.seed_changes_trajectory = false;  // sequential evaluation without faults draws nothing
        return o;
      }());
}

TEST(Conformance, EveryRewardModel) {
  TraceSet t = testing::tiny_world();
  for (std::size_t q = 1; q < t.n_queries(); q += 5) {  // holes: hybrid predicts them
    t.quality[t.at(q, q % 4)] = kMissingF;
    t.cost_usd[t.at(q, q % 4)] = kMissingD;
  }
  const QueryFeaturizer f = QueryFeaturizer::for_traces(FeaturizerConfig{}, t);
  const std::vector<float> x = f.featurize_all(t);
  const WorldPredictors p = WorldPredictors::fit(t, x, f.dim(), Split::kTrain, PredictorConfig{});
  for (RewardModelKind kind : {RewardModelKind::kReplay, RewardModelKind::kModel, RewardModelKind::kHybrid}) {
    SCOPED_TRACE(reward_model_name(kind));
    testing::check_outcome_model([&](uint64_t seed) { return build_outcomes(t, x, f.dim(), kind, &p, seed); },
                                 t.n_queries(), t.n_models());
  }
}

// A wrapper that misreports episode returns: the suite must catch it.
class WrongReturnEnv : public VectorEnv {
 public:
  explicit WrongReturnEnv(std::unique_ptr<VectorEnv> inner) : inner_(std::move(inner)) {}
  const EnvSpec& spec() const override { return inner_->spec(); }
  int num_envs() const override { return inner_->num_envs(); }
  void reset(uint64_t seed) override { inner_->reset(seed); records_.clear(); }
  void step(const int32_t* a) override {
    inner_->step(a);
    records_ = inner_->finished();
    if (!corrupted_ && !records_.empty()) {  // one wrong record: exactly one failure expected
      records_[0].episode_return += 0.5;
      corrupted_ = true;
    }
  }
  const float* obs() const override { return inner_->obs(); }
  const uint8_t* action_mask() const override { return inner_->action_mask(); }
  const float* reward() const override { return inner_->reward(); }
  const uint8_t* terminated() const override { return inner_->terminated(); }
  const uint8_t* truncated() const override { return inner_->truncated(); }
  const float* final_obs() const override { return inner_->final_obs(); }
  const std::vector<EpisodeRecord>& finished() const override { return records_; }

 private:
  std::unique_ptr<VectorEnv> inner_;
  std::vector<EpisodeRecord> records_;
  bool corrupted_ = false;
};

TEST(Conformance, CatchesAWrongEpisodeReturn) {
  auto traces = std::make_shared<const TraceSet>(testing::tiny_world());
  auto make = [traces]() -> std::unique_ptr<VectorEnv> {
    ConfigDoc doc = ConfigDoc::load_string("max_steps: 2\n", "env.yaml");
    ConfigReader r = doc.root();
    const ConductorEnvConfig c = ConductorEnvConfig::parse(r);
    return std::make_unique<WrongReturnEnv>(std::make_unique<ConductorEnv>(c, ConductorWorld::build(c, traces), 2));
  };
  testing::EnvConformanceOptions o;
  o.steps = 20;
  EXPECT_NONFATAL_FAILURE(testing::check_env_conformance(make, o), "episode_return is not the sum");
}

}  // namespace
}  // namespace conductor
