// CartPole with Gymnasium CartPole-v1 dynamics, batched, as a sanity environment for the trainer.
//
// Semantics follow gymnasium/envs/classic_control/cartpole.py (v1): Euler integration with
// tau = 0.02 s, force +-10 N, termination when |x| > 2.4 or |theta| > 12 degrees, reward 1 on every
// step including the terminating one, truncation after `max_episode_steps` (500) steps, initial
// state uniform in [-0.05, 0.05]^4. Dynamics run in double precision (as Gymnasium's numpy float64);
// observations are float32. Actions: 0 push left, 1 push right (never masked).
// Sub-environment i draws from Rng(derive_seed(seed, i)); auto-reset continues that stream.
#pragma once

#include <memory>

#include "core/config.h"
#include "envs/env.h"

namespace conductor {

struct CartPoleConfig {
  int max_episode_steps = 500;  // Gymnasium's CartPole-v1 horizon
  static CartPoleConfig parse(ConfigReader r);
};

std::unique_ptr<VectorEnv> make_cartpole(const CartPoleConfig& cfg, int num_envs);

// A fixed heuristic controller (push towards where the pole is falling): the expert used by
// behaviour-cloning warm starts. Exposed for tests.
int cartpole_heuristic_action(const float* obs);

namespace builtin_envs {
void register_cartpole();
}  // namespace builtin_envs

}  // namespace conductor
