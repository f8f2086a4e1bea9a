// Torch-free access to MLP actor-critic policies: specs, named weights, checkpoint loading.
//
// Used by eval/ and serve/ (which must not include torch headers) and by export:
//   auto policy = load_policy("runs/quickstart");           // newest checkpoint of a run
//   MlpSpec spec; auto tensors = load_mlp_tensors("runs/quickstart", &spec);   // for safetensors
//   auto p2 = make_mlp_policy(spec, tensors);               // from an export
//
// Tensor names follow the torch module: "actor.<i>.weight" [out x in], "actor.<i>.bias" [out] for
// the i-th Linear layer of the actor (i = 0, 2, 4, ... : activations sit at odd indices), the same
// for "critic.<i>.*". The last actor layer gives the logits, the last critic layer the value.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json_util.h"
#include "policies/policy.h"

namespace conductor {

// The `policy` section of a run config.
struct PolicyConfig {
  std::string kind = "mlp";           // only "mlp" here
  std::vector<int> hidden = {64, 64}; // widths of the hidden layers (actor and critic alike)
  std::string activation = "tanh";    // tanh | relu
  static PolicyConfig parse(ConfigReader r);
};

// Everything needed to rebuild an MLP policy's shapes.
struct MlpSpec {
  int obs_dim = 0;
  int n_actions = 0;
  std::vector<int> hidden = {64, 64};
  std::string activation = "tanh";

  static MlpSpec from(const PolicyConfig& cfg, int obs_dim, int n_actions);
  json to_json() const;
  // Throws conductor::Error naming `source` on missing or invalid fields.
  static MlpSpec from_json(const json& j, const std::string& source);
};

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major
};

// Resolves a run folder (its newest complete checkpoint) or a checkpoint folder to the checkpoint
// folder. Throws conductor::Error naming the path when neither.
std::string resolve_checkpoint_dir(const std::string& run_or_checkpoint_dir);

// Reads the MLP weights of a checkpoint (policy.json + model.pt) as named float tensors.
std::vector<NamedTensor> load_mlp_tensors(const std::string& run_or_checkpoint_dir, MlpSpec* spec);

// Builds a torch-free, thread-safe MLP Policy. Throws conductor::Error when a tensor is missing or
// has the wrong shape (the message names the tensor, the expected and the actual shape).
std::unique_ptr<Policy> make_mlp_policy(const MlpSpec& spec, const std::vector<NamedTensor>& tensors);

// Loads the policy of a run folder or checkpoint folder.
std::unique_ptr<Policy> load_policy(const std::string& run_or_checkpoint_dir);

// Draws one action from `probs` (n_actions entries, 0 for masked actions) with u = rng.uniform().
// Never returns an action whose probability is 0 or whose mask entry is 0.
int sample_masked(const float* probs, const uint8_t* mask, int n_actions, double u);

}  // namespace conductor
