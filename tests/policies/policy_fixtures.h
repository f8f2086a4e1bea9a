// Shared fixtures of the policy, export, eval and serve tests: a small synthetic conductor world
// with its world spec and live world, and seeded random MLP policies.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/random.h"
#include "envs/conductor_env.h"
#include "envs/conductor_live.h"
#include "policies/mlp.h"

namespace conductor::testing {

struct TestWorld {
  ConductorEnvConfig config;
  std::shared_ptr<const ConductorWorld> world;
  json spec;
  std::shared_ptr<ConductorLiveWorld> live;
};

// A synthetic world (traces/synth.h, default catalog) of `queries` queries; `extra` is YAML appended
// to the env mapping (e.g. "pool: {randomize: true, min_size: 2}\n").
inline TestWorld make_test_world(int queries, int max_steps, const std::string& extra = "",
                                 const std::string& split = "test") {
  const std::string yaml = "synthetic: {queries: " + std::to_string(queries) +
                           ", seed: 11}\nsplit: " + split + "\nmode: sequential\nmax_steps: " +
                           std::to_string(max_steps) + "\nfeatures: {hash_dim: 32, ngram_max: 2}\n" + extra;
  ConfigDoc doc = ConfigDoc::load_string(yaml, "test-env.yaml");
  ConfigReader r = doc.root();
  TestWorld t;
  t.config = ConductorEnvConfig::parse(r);
  t.world = ConductorWorld::build(t.config);
  t.spec = conductor_world_spec(*t.world, t.config).to_json();
  t.live = ConductorLiveWorld::from_spec(t.spec, "test-spec");
  return t;
}

// An MLP with seeded random weights (uniform in [-scale, scale]); biases favour no action.
inline std::vector<NamedTensor> random_mlp_tensors(const MlpSpec& spec, uint64_t seed, double scale = 0.5) {
  Rng rng(seed);
  std::vector<NamedTensor> out;
  int in = spec.obs_dim;
  std::vector<int> outs = spec.hidden;
  outs.push_back(spec.n_actions);
  for (std::size_t l = 0; l < outs.size(); ++l) {
    NamedTensor w{"actor." + std::to_string(2 * l) + ".weight", {outs[l], in}, {}};
    for (int i = 0; i < outs[l] * in; ++i) w.data.push_back(static_cast<float>(rng.uniform(-scale, scale)));
    NamedTensor b{"actor." + std::to_string(2 * l) + ".bias", {outs[l]}, {}};
    for (int i = 0; i < outs[l]; ++i) b.data.push_back(static_cast<float>(rng.uniform(-scale, scale)));
    out.push_back(std::move(w));
    out.push_back(std::move(b));
    in = outs[l];
  }
  return out;
}

// The current observation of a fresh live episode of `w` as vectors (dense floats and mask).
inline void observe(const LiveEpisode& e, std::vector<float>& obs, std::vector<uint8_t>& mask) {
  const ObsBatch b = e.observation();
  obs.assign(b.dense, b.dense + b.dense_dim);
  mask.assign(b.mask, b.mask + b.n_actions);
}

inline MlpSpec mlp_spec_for(const LiveWorld& w, std::vector<int> hidden = {64, 64}) {
  MlpSpec s;
  s.obs_dim = w.obs_dim();
  s.n_actions = w.n_actions();
  s.hidden = std::move(hidden);
  s.activation = "tanh";
  return s;
}

}  // namespace conductor::testing
