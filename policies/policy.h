// The policy interface seen by evaluation and serving: torch-free, so eval/ and serve/ compile fast.
//
// Contract:
//  - act() reads n observations [n x obs_dim] and masks [n x n_actions] (1 = allowed) and writes one
//    action per row. It never returns a masked action. With greedy=true it returns the most probable
//    allowed action (ties: lowest index); otherwise it samples from `rng_seed`-seeded draws, so the
//    same inputs and seed give the same actions.
//  - If probs is non-null it receives [n x n_actions] action probabilities (0 for masked actions).
//  - Implementations are safe to call from several threads at once (serving).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace conductor {

class Policy {
 public:
  virtual ~Policy() = default;
  virtual int obs_dim() const = 0;
  virtual int n_actions() const = 0;
  virtual std::string kind() const = 0;  // "mlp", ...
  virtual void act(const float* obs, const uint8_t* mask, int n, int32_t* actions, bool greedy,
                   uint64_t rng_seed, float* probs) const = 0;
};

}  // namespace conductor
