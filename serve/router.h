// The conductor's decisions for live requests: request validation for POST /v1/route, the greedy
// first action (or the whole plan of a one-step policy) and action probabilities.
//
// Thread-safe without locks: the policy's act() is const and thread-safe (policies/policy.h), the
// world's start() is const, and every request has its own episode.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "policies/policy.h"
#include "envs/live_world.h"

namespace conductor::serve {

struct Decision {
  int action = -1;
  std::vector<float> probs;  // [n_actions], 0 for masked actions
  std::vector<uint8_t> mask; // [n_actions], the allowed actions at this step
};

class Router {
 public:
  // Throws conductor::Error when the policy's shapes do not match the world's.
  Router(std::shared_ptr<const Policy> policy, std::shared_ptr<const LiveWorld> world, std::string model_version);

  // Validates a /v1/route body: {"query": str, "available": [worker, ...]?, "budget_usd": number?,
  // "cost_weight": number? (cost-conditioned policies, within their range), "task": str?,
  // "input_tokens": int?}. Throws HttpError(400) naming the field at fault (malformed
  // JSON, wrong types, unknown or repeated workers, unknown fields, negative budget).
  LiveQuery parse_route_request(const std::string& body) const;

  // Greedy decision at the episode's current step. Throws HttpError(422) when no action is allowed.
  Decision decide(const LiveEpisode& episode) const;

  // The /v1/route answer for `query` (see docs/serving.md for the schema). Throws HttpError(422)
  // when no worker can be called (none available, or none within the budget).
  json route(const LiveQuery& query, Decision* decision_out = nullptr) const;

  const LiveWorld& world() const { return *world_; }
  const Policy& policy() const { return *policy_; }
  const std::string& model_version() const { return model_version_; }
  int worker_index(const std::string& name) const;  // -1 when unknown

 private:
  std::shared_ptr<const Policy> policy_;
  std::shared_ptr<const LiveWorld> world_;
  std::string model_version_;
};

}  // namespace conductor::serve
