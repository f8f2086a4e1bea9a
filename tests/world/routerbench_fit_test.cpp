// Predictors on the real RouterBench slice (../shared/data/routerbench, 11 workers): fitted on the
// train CSVs, evaluated on the test CSVs. Skipped when the public data is absent.
#include <gtest/gtest.h>

#include <cmath>

#include "world/featurizer.h"
#include "world/predictors.h"
#include "tests/test_util.h"
#include "traces/import_routerbench.h"

namespace conductor {
namespace {

TEST(RouterBench, HeldOutAucAndBrierPerWorker) {
  CONDUCTOR_REQUIRE_SHARED_DATA(data);
  ImportOptions options;
  ImportReport report;
  const TraceSet t = import_routerbench({data + "/routerbench"}, options, report);
  ASSERT_EQ(t.n_models(), 11u);
  FeaturizerConfig fc;
  fc.hash_dim = 256;  // the `conductor rewards fit` default
  const QueryFeaturizer f = QueryFeaturizer::for_traces(fc, t);
  const auto x = f.featurize_all(t);
  const WorldPredictors p = WorldPredictors::fit(t, x, f.dim(), Split::kTrain, PredictorConfig{});
  const json eval = p.evaluate(t, x, f.dim(), Split::kTest);
  ASSERT_EQ(eval["workers"].size(), 11u);
  for (const json& w : eval["workers"]) {
    SCOPED_TRACE(w["worker"].get<std::string>());
    EXPECT_GT(w["heldout_rows"].get<int>(), 900);
    // Better than chance for every worker (measured 0.55 .. 0.75; deterministic: no random draws).
    EXPECT_GT(w["auc"].get<double>(), 0.5);
    // Better calibrated than a constant 0.5 (Brier 0.25).
    EXPECT_LT(w["brier"].get<double>(), 0.25);
    EXPECT_FALSE(w["latency"]["fitted"].get<bool>());  // RouterBench logs no latency: the prior is used
  }
}

}  // namespace
}  // namespace conductor
