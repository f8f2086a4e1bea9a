// The inference policy: what evaluation, off-policy evaluation and serving act with. Torch-free in
// its interface, so eval/ and serve/ compile fast.
//
// Contract:
//  - needs() says which encodings of an ObsBatch (world/observation.h) the policy reads; callers check
//    it once (check_obs_fits) before running anything.
//  - act() reads obs.n rows and writes one action per row. It never returns a masked action (mask
//    0). With options.greedy it returns the most probable allowed action (ties: lowest index);
//    otherwise it samples from draws seeded by options.seed, so the same inputs and seed give the
//    same actions.
//  - If probs is non-null it receives [n x n_actions] action probabilities (exactly 0 for masked
//    actions).
//  - Implementations are safe to call from several threads at once (serving).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "world/observation.h"

namespace conductor {

struct ActOptions {
  bool greedy = true;
  uint64_t seed = 0;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string kind() const = 0;  // the policy.kind it was trained as: "mlp", ...
  virtual int n_actions() const = 0;
  virtual ObsNeeds needs() const = 0;
  virtual void act(const ObsBatch& obs, const ActOptions& options, int32_t* actions, float* probs) const = 0;
};

// Throws conductor::Error when `obs` cannot feed `policy` (a dense encoding of another size, no
// state views, another number of actions). `policy_name` and `source_name` name both sides in the
// message (e.g. a checkpoint path and "the environment on traces.h5").
void check_obs_fits(const Policy& policy, const std::string& policy_name, const ObsBatch& obs,
                    const std::string& source_name);
void check_obs_fits(const ObsNeeds& needs, int n_actions, const std::string& policy_name, const ObsBatch& obs,
                    const std::string& source_name);

// Draws one action from `probs` (n_actions entries, 0 for masked actions) with u = rng.uniform().
// Never returns an action whose probability is 0 or whose mask entry is 0.
int sample_masked(const float* probs, const uint8_t* mask, int n_actions, double u);

// Masked softmax of one row of logits into probs (exactly 0 where mask is 0) and the greedy choice
// (the allowed action with the highest logit, lowest index on ties); the chosen action, or a
// sample from probs with u when !greedy. Throws conductor::Error when no action is allowed.
int choose_action(const float* logits, const uint8_t* mask, int n_actions, bool greedy, double u, float* probs);

}  // namespace conductor
