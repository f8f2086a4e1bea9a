// Rank shards of the conductor environment (docs/distributed.md): two environments of 4 with first
// indices 0 and 4 step exactly the sub-environments 0-3 and 4-7 of one environment of 8.
#include <gtest/gtest.h>

#include "core/config.h"
#include "core/error.h"
#include "core/random.h"
#include "envs/conductor_env.h"
#include "world/conductor_state.h"
#include "envs/registry.h"

namespace conductor {
namespace {

std::unique_ptr<VectorEnv> env_of(int n, const std::string& mode = "sample") {
  ConfigDoc doc = ConfigDoc::load_string(
      "synthetic: {queries: 300, seed: 4}\nsplit: train\nmax_steps: 3\nmode: " + mode +
          "\npool: {randomize: true, min_size: 3}\nfeatures: {hash_dim: 16, ngram_max: 1}\n",
      "env.yaml");
  ConfigReader r = doc.root();
  return make_env("conductor", r, n);
}

TEST(ConductorShards, TwoShardsReplayOneEnvironmentOfTheirSum) {
  auto whole = env_of(8);
  auto a = env_of(4), b = env_of(4);
  ASSERT_TRUE(a->set_first_index(0));
  ASSERT_TRUE(b->set_first_index(4));
  whole->reset(21);
  a->reset(21);
  b->reset(21);
  const int A = whole->spec().n_actions;
  Rng rng(3);
  std::vector<int32_t> actions(8);
  for (int t = 0; t < 40; ++t) {
    for (int i = 0; i < 8; ++i) {
      const VectorEnv& shard = i < 4 ? *a : *b;
      const int j = i % 4;
      ASSERT_EQ(whole->state_views()[i].query, shard.state_views()[j].query) << "step " << t << " env " << i;
      for (int k = 0; k < A; ++k) ASSERT_EQ(whole->action_mask()[i * A + k], shard.action_mask()[j * A + k]);
      std::vector<int> allowed;
      for (int k = 0; k < A; ++k)
        if (whole->action_mask()[i * A + k]) allowed.push_back(k);
      actions[i] = allowed[rng.below(allowed.size())];
    }
    whole->step(actions.data());
    a->step(actions.data());
    b->step(actions.data() + 4);
    for (int i = 0; i < 8; ++i) ASSERT_EQ(whole->reward()[i], (i < 4 ? a : b)->reward()[i % 4]) << t;
  }
  // A different first index gives other episodes.
  auto c = env_of(4);
  ASSERT_TRUE(c->set_first_index(2));
  c->reset(21);
  int same = 0;
  auto d = env_of(4);
  d->reset(21);
  for (int j = 0; j < 4; ++j) same += c->state_views()[j].query == d->state_views()[j].query;
  EXPECT_LT(same, 4);
  // A sequential pass is one cursor: it cannot be sharded this way.
  EXPECT_FALSE(env_of(4, "sequential")->set_first_index(4));
}

}  // namespace
}  // namespace conductor
