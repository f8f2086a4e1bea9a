// The conductor's decisions for live requests: request validation for POST /v1/route, the first
// action (or the whole plan of a one-step policy), action probabilities, and exploration with its
// exact propensity.
//
// Exploration (serve.yaml `exploration`), for logs that off-policy evaluation can use:
//   greedy (default)  the most probable allowed action; propensity 1
//   {epsilon: e}      with probability e a uniformly random allowed action, else the greedy one;
//                     propensity of the action taken a: (1 - e) * 1[a = greedy] + e / |allowed|
//   {sample: true}    an action drawn from the policy's probabilities; propensity = its probability
// The draws come from a per-request generator (seeded from `seed` and the request's sequence
// number), and the propensity is computed from the same probabilities the draw used.
//
// Thread-safe without locks: the policy's act() is const and thread-safe (policies/policy.h), the
// world's start() is const, and every request has its own episode.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json_util.h"
#include "core/random.h"
#include "policies/policy.h"
#include "envs/live_world.h"

namespace conductor::serve {

struct Decision {
  int action = -1;           // the action taken (greedy, or drawn by exploration)
  int greedy_action = -1;    // the policy's most probable allowed action
  double propensity = 1.0;   // probability that this decision rule takes `action` here
  std::vector<float> probs;  // [n_actions], 0 for masked actions
  std::vector<uint8_t> mask; // [n_actions], the allowed actions at this step
};

struct ExplorationConfig {
  enum class Mode { kGreedy, kEpsilon, kSample };
  Mode mode = Mode::kGreedy;
  double epsilon = 0.0;
  uint64_t seed = 0;        // 0: from the clock at start-up (logged draws are then not replayable)
  // "greedy" | "epsilon:0.1" | "sample": written into every decision row.
  std::string id() const;
  // {epsilon: e} with e in (0, 1], or {sample: true}, optional seed; absent section = greedy.
  static ExplorationConfig parse(ConfigReader r);
};

class Router {
 public:
  // Throws conductor::Error when the policy's shapes do not match the world's.
  Router(std::shared_ptr<const Policy> policy, std::shared_ptr<const LiveWorld> world, std::string model_version);

  // Validates a /v1/route body: {"query": non-empty str, "available": [worker, ...]?, "budget_usd":
  // number?, "cost_weight": number? (cost-conditioned policies, within their range), "task": str?
  // (one of the world's tasks() when it has any), "input_tokens": int?}. Throws HttpError(400)
  // naming the field at fault (malformed JSON, numbers out of a double's range, wrong types,
  // unknown or repeated workers, unknown tasks, unknown fields, negative budget, empty query).
  LiveQuery parse_route_request(const std::string& body) const;

  // Greedy decision at the episode's current step. Throws HttpError(422) when no action is allowed.
  Decision decide(const LiveEpisode& episode) const;
  // The decision under `exploration`, drawing from `rng` (the request's own generator).
  Decision decide(const LiveEpisode& episode, const ExplorationConfig& exploration, Rng& rng) const;

  // The /v1/route answer for `query` (see docs/serving.md for the schema). Throws HttpError(422)
  // when no worker can be called (none available, or none within the budget).
  json route(const LiveQuery& query, Decision* decision_out = nullptr) const;
  json route(const LiveQuery& query, const ExplorationConfig& exploration, Rng& rng, Decision* decision_out) const;

  // Validation shared by /v1/route and the gateway's `conductor` extension: the extra fields a
  // request may carry besides the query (query_id: a client's id for the query, logged).
  static constexpr const char* kQueryIdField = "query_id";

  const LiveWorld& world() const { return *world_; }
  const Policy& policy() const { return *policy_; }
  const std::string& model_version() const { return model_version_; }
  int worker_index(const std::string& name) const;  // -1 when unknown
  // worker_index, or a 400 naming `field`, the unknown name and the known workers.
  int known_worker(const std::string& name, const std::string& field) const;

 private:
  std::shared_ptr<const Policy> policy_;
  std::shared_ptr<const LiveWorld> world_;
  std::string model_version_;
};

}  // namespace conductor::serve
