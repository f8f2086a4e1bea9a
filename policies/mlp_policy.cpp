// Torch-free MLP forward pass for eval and serving.
#include <cmath>
#include <filesystem>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/random.h"
#include "policies/mlp.h"

namespace conductor {

std::shared_ptr<const MlpSettings> MlpSettings::parse(ConfigReader& r) {
  auto c = std::make_shared<MlpSettings>();
  c->hidden = r.get<std::vector<int>>("hidden", c->hidden);
  for (size_t i = 0; i < c->hidden.size(); ++i)
    if (c->hidden[i] < 1 || c->hidden[i] > 65536)
      r.fail_at("hidden", "width " + std::to_string(c->hidden[i]) + " at index " + std::to_string(i) +
                              " out of range: expected 1 <= width <= 65536");
  c->activation = r.get_choice("activation", c->activation, {"tanh", "relu"});
  r.finish();
  return c;
}

MlpSpec MlpSpec::from(const MlpSettings& cfg, int obs_dim, int n_actions) {
  MlpSpec s;
  s.obs_dim = obs_dim;
  s.n_actions = n_actions;
  s.hidden = cfg.hidden;
  s.activation = cfg.activation;
  return s;
}

json MlpSpec::to_json() const {
  return json{{"kind", "mlp"}, {"obs_dim", obs_dim}, {"n_actions", n_actions}, {"hidden", hidden},
              {"activation", activation}};
}

MlpSpec MlpSpec::from_json(const json& j, const std::string& source) {
  MlpSpec s;
  auto need = [&](const char* key) -> const json& {
    if (!j.is_object() || !j.contains(key)) fail(source, ": missing field '", key, "'");
    return j.at(key);
  };
  try {
    if (j.contains("kind") && j.at("kind").get<std::string>() != "mlp")
      fail(source, ": policy kind '", j.at("kind").get<std::string>(), "' is not 'mlp'");
    s.obs_dim = need("obs_dim").get<int>();
    s.n_actions = need("n_actions").get<int>();
    s.hidden = need("hidden").get<std::vector<int>>();
    s.activation = need("activation").get<std::string>();
  } catch (const json::exception& e) {
    fail(source, ": invalid policy spec: ", e.what());
  }
  if (s.obs_dim < 1) fail(source, ": field 'obs_dim' must be positive, got ", s.obs_dim);
  if (s.n_actions < 1) fail(source, ": field 'n_actions' must be positive, got ", s.n_actions);
  for (int h : s.hidden)
    if (h < 1) fail(source, ": field 'hidden' has a non-positive width ", h);
  if (s.activation != "tanh" && s.activation != "relu")
    fail(source, ": field 'activation' is '", s.activation, "', expected tanh or relu");
  return s;
}

namespace {

struct Layer {
  int in = 0, out = 0;
  std::vector<float> w;  // [out x in]
  std::vector<float> b;  // [out]
};

class MlpPolicy final : public Policy {
 public:
  MlpPolicy(MlpSpec spec, std::vector<Layer> layers)
      : spec_(std::move(spec)), layers_(std::move(layers)) {}
  int n_actions() const override { return spec_.n_actions; }
  std::string kind() const override { return "mlp"; }

  ObsNeeds needs() const override { return ObsNeeds{spec_.obs_dim, false}; }

  void act(const ObsBatch& obs, const ActOptions& options, int32_t* actions, float* probs) const override {
    const int A = spec_.n_actions;
    CONDUCTOR_CHECK(obs.dense && obs.dense_dim == spec_.obs_dim && obs.n_actions == A,
                    "MLP policy fed an observation batch it cannot read (check_obs_fits first)");
    Rng rng(options.seed);
    std::vector<float> cur, next, p(A);
    for (int row = 0; row < obs.n; ++row) {
      cur.assign(obs.dense + static_cast<size_t>(row) * spec_.obs_dim,
                 obs.dense + static_cast<size_t>(row + 1) * spec_.obs_dim);
      for (size_t l = 0; l < layers_.size(); ++l) {
        const Layer& L = layers_[l];
        next.assign(L.out, 0.f);
        for (int o = 0; o < L.out; ++o) {
          const float* wr = &L.w[static_cast<size_t>(o) * L.in];
          float s = L.b[o];
          for (int i = 0; i < L.in; ++i) s += wr[i] * cur[i];
          if (l + 1 < layers_.size()) s = spec_.activation == "tanh" ? std::tanh(s) : std::max(s, 0.f);
          next[o] = s;
        }
        cur.swap(next);
      }
      const uint8_t* m = obs.mask + static_cast<size_t>(row) * A;
      const double u = options.greedy ? 0.0 : rng.uniform();
      try {
        actions[row] = choose_action(cur.data(), m, A, options.greedy, u, p.data());
      } catch (const Error&) {
        fail("policy.act: row ", row, " has no allowed action in its mask");
      }
      if (probs) std::copy(p.begin(), p.end(), probs + static_cast<size_t>(row) * A);
    }
  }

 private:
  MlpSpec spec_;
  std::vector<Layer> layers_;  // the actor only: serving never needs the value
};

}  // namespace

std::unique_ptr<Policy> make_mlp_policy(const MlpSpec& spec, const std::vector<NamedTensor>& tensors) {
  std::map<std::string, const NamedTensor*> by_name;
  for (const auto& t : tensors) by_name[t.name] = &t;
  auto find = [&](const std::string& name, std::vector<int64_t> shape) -> const NamedTensor& {
    auto it = by_name.find(name);
    if (it == by_name.end()) fail("MLP policy: tensor '", name, "' is missing");
    auto fmt = [](const std::vector<int64_t>& s) {
      std::string o = "[";
      for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
      return o + "]";
    };
    if (it->second->shape != shape)
      fail("MLP policy: tensor '", name, "' has shape ", fmt(it->second->shape), ", expected ", fmt(shape));
    int64_t numel = 1;
    for (auto d : shape) numel *= d;
    if (static_cast<int64_t>(it->second->data.size()) != numel)
      fail("MLP policy: tensor '", name, "' holds ", it->second->data.size(), " values, expected ", numel);
    return *it->second;
  };
  std::vector<Layer> layers;
  int in = spec.obs_dim;
  std::vector<int> outs = spec.hidden;
  outs.push_back(spec.n_actions);
  for (size_t l = 0; l < outs.size(); ++l) {
    const std::string prefix = "actor." + std::to_string(2 * l);
    Layer L;
    L.in = in;
    L.out = outs[l];
    L.w = find(prefix + ".weight", {L.out, L.in}).data;
    L.b = find(prefix + ".bias", {L.out}).data;
    layers.push_back(std::move(L));
    in = outs[l];
  }
  return std::make_unique<MlpPolicy>(spec, std::move(layers));
}

}  // namespace conductor
