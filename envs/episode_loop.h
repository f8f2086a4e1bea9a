// The one loop that runs a policy through batched environments: training rollouts, GRPO's groups,
// behaviour cloning, the final evaluation, replay and off-policy evaluation all step with it.
//
//   run_env_loop(envs, act, after, done, max_iterations, what)
// repeats, while done() is false, one iteration: for each environment e in order,
// act(e, env.observations(), actions) fills one action per sub-environment, env.step(actions), and
// after(e, env, actions) reads the transition (rewards, episode ends, finished()). Several
// environments step in lockstep (GRPO's group members); the single-environment overload drops e.
// Throws conductor::Error naming `what` when done() is still false after max_iterations iterations
// (an environment that never ends its episodes, a policy that never finishes). Returns the number
// of iterations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "envs/env.h"

namespace conductor {

template <class Act, class After, class Done>
int64_t run_env_loop(const std::vector<VectorEnv*>& envs, Act&& act, After&& after, Done&& done,
                     int64_t max_iterations, const std::string& what) {
  std::vector<std::vector<int32_t>> actions;
  for (VectorEnv* e : envs) actions.emplace_back(static_cast<std::size_t>(e->num_envs()), 0);
  int64_t iterations = 0;
  while (!done()) {
    if (iterations >= max_iterations)
      fail(what, ": not done after ", max_iterations, " environment steps (", envs.at(0)->spec().id, ")");
    for (std::size_t e = 0; e < envs.size(); ++e) {
      VectorEnv& env = *envs[e];
      act(static_cast<int>(e), env.observations(), actions[e].data());
      env.step(actions[e].data());
      after(static_cast<int>(e), env, static_cast<const int32_t*>(actions[e].data()));
    }
    ++iterations;
  }
  return iterations;
}

template <class Act, class After, class Done>
int64_t run_env_loop(VectorEnv& env, Act&& act, After&& after, Done&& done, int64_t max_iterations,
                     const std::string& what) {
  return run_env_loop(
      std::vector<VectorEnv*>{&env},
      [&](int, const ObsBatch& obs, int32_t* actions) { act(obs, actions); },
      [&](int, VectorEnv& e, const int32_t* actions) { after(e, actions); }, done, max_iterations, what);
}

}  // namespace conductor
