// The training-side policy interface (LibTorch): what the trainer's algorithms reach a policy through.
// Every policy kind (policy.kind in a run config) implements it; the registry (policies/registry.h)
// builds one by kind, so the trainer never names a kind.
//
// Contract:
//  - encode() appends the rows of an ObsBatch to an EncodedObs in the policy's own encoding (the MLP
//    copies the dense floats; a token policy renders and tokenizes each state). The trainer keeps the
//    EncodedObs of a rollout and evaluates rows of it again during the update: encodings must not
//    depend on anything but the batch row (no hidden per-step state).
//  - forward(enc, rows) gives the unmasked action logits [R x n_actions] and the state values [R]
//    of the rows `rows` (int64 [R]) of `enc`, with gradients unless torch::NoGradGuard is active
//    (policies may use caches of their own when no gradient is needed). logits() alone may be
//    cheaper (behaviour cloning, the KL reference).
//  - parameters(): every trainable tensor (what the optimizer steps and gradients are synchronized
//    over); policy_parameters(): those that shape the logits (behaviour cloning trains only these).
//  - save(dir) writes policy.json ({"kind": ..., the kind's config}) and the weight files of this
//    kind into an existing folder; load(dir) reads them back into a model built from the same config
//    and throws conductor::Error naming the file when they do not fit.
//  - frozen_copy(): a reference policy for KL penalties, never trained; a kind may share weights (a
//    LoRA model with its adapters off) as long as the reference does not change when this one does.
//    save_weights/load_weights store a model's (or a reference's) weights alone.
//  - inference_policy(): the torch-free Policy that acts as this model does now.
//  - take_stats(): counters of the kind's own, added to each update's metrics.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "world/observation.h"
#include "policies/policy.h"

namespace conductor {

// Observation rows in a policy's own encoding, owned (kept from a rollout to its update).
struct EncodedObs {
  int dense_dim = 0;
  std::vector<float> dense;        // [rows x dense_dim]
  std::vector<int32_t> tokens;     // token rows, concatenated
  std::vector<int64_t> offsets{0}; // token row r = tokens[offsets[r], offsets[r + 1])
  std::vector<int64_t> keys;       // optional per-row keys of the policy's own (e.g. query ids)
  int64_t rows = 0;

  void clear();
  void reserve(int64_t rows_hint, int64_t tokens_hint = 0);
  // Appends row r of `src` (same encoding).
  void append_row(const EncodedObs& src, int64_t r);
};

struct PolicyOutput {
  torch::Tensor logits;  // [R x n_actions], unmasked
  torch::Tensor value;   // [R]
};

class PolicyModel {
 public:
  virtual ~PolicyModel() = default;
  virtual std::string kind() const = 0;
  virtual int n_actions() const = 0;
  virtual ObsNeeds needs() const = 0;

  virtual void encode(const ObsBatch& obs, EncodedObs& out) const = 0;
  virtual PolicyOutput forward(const EncodedObs& enc, const torch::Tensor& rows) = 0;
  virtual torch::Tensor logits(const EncodedObs& enc, const torch::Tensor& rows) { return forward(enc, rows).logits; }
  virtual torch::Tensor value(const EncodedObs& enc, const torch::Tensor& rows) { return forward(enc, rows).value; }

  virtual std::vector<torch::Tensor> parameters() = 0;
  virtual std::vector<torch::Tensor> policy_parameters() = 0;

  virtual void save(const std::string& dir) = 0;
  virtual void load(const std::string& dir) = 0;
  virtual void save_weights(const std::string& path) = 0;
  virtual void load_weights(const std::string& path) = 0;

  virtual std::unique_ptr<PolicyModel> frozen_copy() = 0;
  virtual std::unique_ptr<Policy> inference_policy() = 0;
  // The policy's own counters since the last call (e.g. prompts truncated), logged with each
  // update's metrics. Must depend only on what the policy computed, not on cache state, so that a
  // resumed run logs what the uninterrupted one does.
  virtual std::vector<std::pair<std::string, double>> take_stats() { return {}; }
};

// ---- Masked categorical distribution (masks: bool [B x A], true = allowed) ----
// Masked actions get logit -inf, so their probability is exactly 0 and their log-probability -inf.
torch::Tensor masked_log_probs(const torch::Tensor& logits, const torch::Tensor& mask);
// Entropy of each row from masked log-probabilities (masked entries contribute 0, not NaN).
torch::Tensor masked_entropy(const torch::Tensor& log_probs);

// rows [begin, end) as an int64 tensor (for forward over a contiguous block).
torch::Tensor row_range(int64_t begin, int64_t end);

}  // namespace conductor
