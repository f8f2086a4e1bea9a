// The MLP policy kind (`policy.kind: mlp`): actor-critic over the dense observation. This header is
// torch-free (specs, named weights, the inference policy); the LibTorch module is
// policies/actor_critic.h.
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
#include "policies/registry.h"

namespace conductor {

// The `policy` keys of kind mlp.
struct MlpSettings : PolicySettings {
  std::vector<int> hidden = {64, 64};  // widths of the hidden layers (actor and critic alike)
  std::string activation = "tanh";     // tanh | relu
  static std::shared_ptr<const MlpSettings> parse(ConfigReader& r);
  json to_json() const override { return {{"hidden", hidden}, {"activation", activation}}; }
};

// Everything needed to rebuild an MLP policy's shapes (policy.json of a checkpoint).
struct MlpSpec {
  int obs_dim = 0;
  int n_actions = 0;
  std::vector<int> hidden = {64, 64};
  std::string activation = "tanh";

  static MlpSpec from(const MlpSettings& settings, int obs_dim, int n_actions);
  json to_json() const;
  // Throws conductor::Error naming `source` on missing or invalid fields.
  static MlpSpec from_json(const json& j, const std::string& source);
};

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major
};

// Builds a torch-free, thread-safe MLP Policy from the actor's tensors. Throws conductor::Error when
// a tensor is missing or has the wrong shape (the message names the tensor, the expected and the
// actual shape).
std::unique_ptr<Policy> make_mlp_policy(const MlpSpec& spec, const std::vector<NamedTensor>& tensors);

// The export of an MLP policy: its spec as the manifest's policy config and the actor's tensors
// (names of this header) as model.safetensors, F32.
ExportedPolicy mlp_exported_policy(const MlpSpec& spec, const std::vector<NamedTensor>& actor_tensors);

// The registry entry of kind "mlp" (policies/registry.cpp lists it).
PolicyKind mlp_policy_kind();

}  // namespace conductor
