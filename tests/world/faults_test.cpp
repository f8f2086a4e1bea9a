// Fault effects, written once (world/faults.h): the per-call rule the environment applies
// (FaultEffects<float>::call + CallFault::apply) and the full-information table rewrite of eval's
// --scenario (apply_faults, in double) are the same rule; a table refuses faults it cannot hold.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"
#include "world/faults.h"
#include "world/replay_table.h"

namespace conductor {
namespace {

using eval::ReplayTable;
using testing::expect_error;

// 3 queries x 2 workers {a, b}, none failed.
ReplayTable small_table() {
  ReplayTable t;
  t.workers = {"a", "b"};
  t.query_index = {0, 1, 2};
  t.quality = {1.0, 0.5, 0.25, 1.0, 0.0, 0.75};
  t.cost_usd = {0.001, 0.01, 0.002, 0.02, 0.003, 0.03};
  t.latency_s = {1.1, 2.2, 3.3, 4.4, 5.5, 6.6};
  t.answer = {1, 2, 3, 4, 5, 6};
  t.failed.assign(6, 0);
  return t;
}

FaultSpec whole_split(FaultKind kind, const std::string& worker, double factor = 1.0, bool announced = false) {
  FaultSpec f;
  f.kind = kind;
  f.worker = worker;
  f.where = "test fault";
  f.worker_where = "test fault";
  f.factor = factor;
  f.announced = announced;
  if (kind != FaultKind::kPriceChange) {
    f.start = 0;
    f.duration = int64_t(1) << 50;
  }
  return f;
}

TEST(Faults, CallFaultRewritesOneCall) {
  float q = 0.75f, lat = 2.f;
  double cost = 0.5;
  int32_t answer = 7;
  CallFault<float> slow;
  slow.latency_factor = 3.f;
  slow.price_factor = 2.f;
  EXPECT_FALSE(slow.apply(q, cost, lat, answer));
  EXPECT_EQ(q, 0.75f);
  EXPECT_EQ(lat, 6.f);
  EXPECT_EQ(cost, 1.0);
  EXPECT_EQ(answer, 7);
  CallFault<float> down;
  down.fails = true;
  down.fail_latency_s = 30.f;
  EXPECT_TRUE(down.apply(q, cost, lat, answer));
  EXPECT_EQ(q, 0.f);
  EXPECT_EQ(lat, 30.f);
  EXPECT_EQ(cost, 0.0);
  EXPECT_EQ(answer, -1);
}

// The table rewrite is the per-call rule of the same faults, cell by cell: in double it is exact
// (the factor itself, no float rounding), and the environment's float effect agrees to float precision.
TEST(Faults, TableRewriteIsThePerCallRuleOnEveryCell) {
  const std::vector<std::vector<FaultSpec>> cases = {
      {whole_split(FaultKind::kOutage, "b")},
      {whole_split(FaultKind::kOutage, "a", 1.0, /*announced=*/true)},
      {whole_split(FaultKind::kLatencySpike, "b", 1.1)},
      {whole_split(FaultKind::kPriceChange, "a", 0.3)},
      {whole_split(FaultKind::kLatencySpike, "all", 2.5), whole_split(FaultKind::kPriceChange, "b", 1.7)}};
  for (const auto& faults : cases) {
    const ReplayTable clean = small_table();
    ReplayTable t = clean;
    apply_faults(faults, t);
    const FaultModel model(faults, clean.workers, {});
    FaultEffects<float> fx;
    model.init(fx);
    Rng rng(3);
    model.begin_episode(0, rng, fx);
    for (std::size_t m = 0; m < 2; ++m) {
      const CallFault<float> f = fx.call(static_cast<int>(m), rng);
      for (std::size_t r = 0; r < 3; ++r) {
        const std::size_t c = clean.at(r, m);
        float q = static_cast<float>(clean.quality[c]), lat = static_cast<float>(clean.latency_s[c]);
        double cost = clean.cost_usd[c];
        int32_t answer = clean.answer[c];
        const bool failed = f.apply(q, cost, lat, answer);
        EXPECT_EQ(t.failed[c], failed ? 1 : 0) << faults[0].worker << " cell " << c;
        EXPECT_NEAR(t.quality[c], q, 1e-7);
        EXPECT_NEAR(t.cost_usd[c], cost, 1e-7 * clean.cost_usd[c]);
        EXPECT_NEAR(t.latency_s[c], lat, 1e-6 * t.latency_s[c]);
        EXPECT_EQ(t.answer[c], answer);
      }
    }
  }
  // In the table's own arithmetic: latency x 1.1 and cost x 0.3 in double, a down cell at 30 s.
  ReplayTable t = small_table();
  apply_faults({whole_split(FaultKind::kLatencySpike, "b", 1.1), whole_split(FaultKind::kPriceChange, "a", 0.3),
                whole_split(FaultKind::kOutage, "a")},
               t);
  const ReplayTable clean = small_table();
  for (std::size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(t.latency_s[t.at(r, 1)], clean.latency_s[t.at(r, 1)] * 1.1);
    EXPECT_EQ(t.cost_usd[t.at(r, 1)], clean.cost_usd[t.at(r, 1)]);
    EXPECT_EQ(t.failed[t.at(r, 0)], 1);
    EXPECT_EQ(t.latency_s[t.at(r, 0)], 30.0);
    EXPECT_EQ(t.cost_usd[t.at(r, 0)], 0.0);
  }
}

TEST(Faults, TableRefusesFaultsThatDrawOrSample) {
  FaultSpec timeout;
  timeout.kind = FaultKind::kTimeout;
  timeout.worker = "a";
  timeout.prob = 0.1;
  timeout.where = "cfg.yaml:3: key 'env.faults[0]'";
  FaultSpec random_outage = whole_split(FaultKind::kOutage, "a");
  random_outage.start = -1;
  random_outage.rate = 0.01;
  random_outage.where = "cfg.yaml:4: key 'env.faults[1]'";
  FaultSpec mix;
  mix.kind = FaultKind::kTaskMix;
  mix.where = "cfg.yaml:5: key 'env.faults[2]'";
  for (const FaultSpec& f : {timeout, random_outage}) {
    ReplayTable t = small_table();
    expect_error([&] { apply_faults({f}, t); }, {f.where, "draws", "one outcome per call"});
  }
  ReplayTable t = small_table();
  expect_error([&] { apply_faults({mix}, t); }, {mix.where, "task mix"});
  expect_error([&] { apply_faults({whole_split(FaultKind::kOutage, "c")}, t); }, {"unknown worker 'c'", "a, b"});
}

}  // namespace
}  // namespace conductor
