// A contextual bandit with a known optimal policy: a sanity environment for the trainer.
//
// Each episode is one step. The context c is drawn uniformly from n_contexts and shown one-hot.
// Action a earns mean reward mu[c][a] plus Gaussian noise (std `noise`). For every context exactly
// one allowed action has mean 1.0 (the optimal one, chosen by `problem_seed`); the others have means
// uniform in [0, 0.5]. With `masked_trap: true` a second action per context has mean 2.0 but is
// masked out: a trainer that leaks probability onto masked actions learns to pick it and fails.
// Extras per finished episode: "optimal" (1 when the optimal action was chosen) and "context".
#pragma once

#include <memory>
#include <vector>

#include "core/config.h"
#include "envs/env.h"

namespace conductor {

struct BanditConfig {
  int n_contexts = 4;
  int n_actions = 4;
  double noise = 0.1;        // std of the Gaussian reward noise
  bool masked_trap = false;  // add a masked, higher-paying action per context
  uint64_t problem_seed = 7; // draws the reward table (independent of the episode seed)
  static BanditConfig parse(ConfigReader r);
};

// The reward table and mask the environment uses (exposed for tests and for the expert).
struct BanditProblem {
  int n_contexts = 0, n_actions = 0;
  std::vector<double> mean;      // [n_contexts x n_actions]
  std::vector<uint8_t> allowed;  // [n_contexts x n_actions]
  std::vector<int> optimal;      // [n_contexts]
  std::vector<int> trap;         // [n_contexts], -1 without masked_trap
  // The best context-free action among those allowed in every context (the "best fixed strategy").
  int best_fixed_action = 0;
  static BanditProblem make(const BanditConfig& cfg);
};

std::unique_ptr<VectorEnv> make_bandit(const BanditConfig& cfg, int num_envs);

namespace builtin_envs {
void register_bandit();
}  // namespace builtin_envs

}  // namespace conductor
