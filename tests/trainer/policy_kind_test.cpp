// A policy kind defined outside policies/ and registered at run time (a linear softmax policy with a
// linear value): PPO trains it from YAML (`policy.kind: linear`), the trainer checkpoints and resumes
// it, load_policy finds it by its checkpoint's kind, and export/load_export round-trip it, without
// any of trainer/, eval/ or the export layer naming it. Adding a built-in kind is the same code in
// policies/ plus one line in policies/registry.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "artifacts/safetensors.h"
#include "core/atomic_file.h"
#include "core/random.h"
#include "envs/bandit.h"
#include "policies/export.h"
#include "policies/policy_model.h"
#include "policies/registry.h"
#include "tests/test_util.h"
#include "trainer/train.h"

namespace conductor {
namespace {

struct LinearSettings : PolicySettings {
  double init_std = 0.01;
  json to_json() const override { return {{"init_std", init_std}}; }
};

struct LinearShape {
  int obs_dim = 0, n_actions = 0;
};

class LinearNetImpl : public torch::nn::Module {
 public:
  LinearNetImpl(LinearShape s, double init_std) {
    pi = register_module("pi", torch::nn::Linear(s.obs_dim, s.n_actions));
    v = register_module("v", torch::nn::Linear(s.obs_dim, 1));
    torch::NoGradGuard ng;
    pi->weight.normal_(0.0, init_std);
    pi->bias.zero_();
  }
  torch::nn::Linear pi{nullptr}, v{nullptr};
};
TORCH_MODULE(LinearNet);

// Torch-free inference: logits = W x + b.
class LinearPolicy : public Policy {
 public:
  LinearPolicy(LinearShape s, std::vector<float> w, std::vector<float> b) : s_(s), w_(std::move(w)), b_(std::move(b)) {}
  std::string kind() const override { return "linear"; }
  int n_actions() const override { return s_.n_actions; }
  ObsNeeds needs() const override { return ObsNeeds{s_.obs_dim, false}; }
  void act(const ObsBatch& obs, const ActOptions& o, int32_t* actions, float* probs) const override {
    Rng rng(o.seed);
    std::vector<float> z(s_.n_actions), p(s_.n_actions);
    for (int i = 0; i < obs.n; ++i) {
      for (int a = 0; a < s_.n_actions; ++a) {
        z[a] = b_[a];
        for (int d = 0; d < s_.obs_dim; ++d) z[a] += w_[a * s_.obs_dim + d] * obs.dense[i * s_.obs_dim + d];
      }
      const double u = o.greedy ? 0.0 : rng.uniform();
      actions[i] = choose_action(z.data(), obs.mask + i * s_.n_actions, s_.n_actions, o.greedy, u, p.data());
      if (probs) std::copy(p.begin(), p.end(), probs + i * s_.n_actions);
    }
  }

 private:
  LinearShape s_;
  std::vector<float> w_, b_;
};

std::vector<float> floats(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

class LinearModel : public PolicyModel {
 public:
  LinearModel(LinearShape s, double init_std) : s_(s), init_std_(init_std), net_(s, init_std) {}
  std::string kind() const override { return "linear"; }
  int n_actions() const override { return s_.n_actions; }
  ObsNeeds needs() const override { return ObsNeeds{s_.obs_dim, false}; }
  void encode(const ObsBatch& obs, EncodedObs& out) const override {
    out.dense_dim = s_.obs_dim;
    out.dense.insert(out.dense.end(), obs.dense, obs.dense + obs.n * s_.obs_dim);
    out.rows += obs.n;
  }
  PolicyOutput forward(const EncodedObs& enc, const torch::Tensor& rows) override {
    const auto x = torch::from_blob(const_cast<float*>(enc.dense.data()), {enc.rows, enc.dense_dim}).index_select(0, rows);
    return {net_->pi(x), net_->v(x).squeeze(-1)};
  }
  std::vector<torch::Tensor> parameters() override { return net_->parameters(); }
  std::vector<torch::Tensor> policy_parameters() override { return net_->pi->parameters(); }
  void save(const std::string& dir) override {
    save_weights(dir + "/model.pt");
    write_file_atomic(dir + "/policy.json",
                      json{{"kind", "linear"}, {"obs_dim", s_.obs_dim}, {"n_actions", s_.n_actions}}.dump());
  }
  void load(const std::string& dir) override { load_weights(dir + "/model.pt"); }
  void save_weights(const std::string& path) override { torch::save(net_, path); }
  void load_weights(const std::string& path) override { torch::load(net_, path); }
  std::unique_ptr<PolicyModel> frozen_copy() override {
    auto c = std::make_unique<LinearModel>(s_, init_std_);
    torch::NoGradGuard ng;
    auto src = net_->named_parameters();
    for (auto& p : c->net_->named_parameters()) p.value().copy_(src[p.key()]);
    return c;
  }
  std::unique_ptr<Policy> inference_policy() override {
    return std::make_unique<LinearPolicy>(s_, floats(net_->pi->weight), floats(net_->pi->bias));
  }

 private:
  LinearShape s_;
  double init_std_;
  LinearNet net_;
};

LinearShape shape_of(const std::string& checkpoint_dir) {
  const json j = parse_json(read_file(checkpoint_dir + "/policy.json"), checkpoint_dir + "/policy.json");
  return LinearShape{j.at("obs_dim").get<int>(), j.at("n_actions").get<int>()};
}

PolicyKind linear_kind() {
  PolicyKind k;
  k.kind = "linear";
  k.parse = [](ConfigReader& r) -> std::shared_ptr<const PolicySettings> {
    auto s = std::make_shared<LinearSettings>();
    s->init_std = r.get_in<double>("init_std", s->init_std, 0.0, 10.0);
    r.finish();
    return s;
  };
  k.make_model = [](const PolicySettings& s, const EnvSpec& env) -> std::unique_ptr<PolicyModel> {
    return std::make_unique<LinearModel>(LinearShape{env.obs_dim, env.n_actions},
                                         static_cast<const LinearSettings&>(s).init_std);
  };
  k.load_checkpoint = [](const std::string& dir) -> std::unique_ptr<Policy> {
    LinearModel m(shape_of(dir), 0.0);
    m.load(dir);
    return m.inference_policy();
  };
  k.export_policy = [](const std::string& dir) {
    const LinearShape s = shape_of(dir);
    safetensors::File st;
    LinearNet net(s, 0.0);
    torch::load(net, dir + "/model.pt");
    st.tensors["pi.weight"] = safetensors::Tensor::from_f32({s.n_actions, s.obs_dim}, floats(net->pi->weight));
    st.tensors["pi.bias"] = safetensors::Tensor::from_f32({s.n_actions}, floats(net->pi->bias));
    ExportedPolicy e;
    e.config = {{"obs_dim", s.obs_dim}, {"n_actions", s.n_actions}};
    e.files.push_back({"model.safetensors", safetensors::serialize(st)});
    return e;
  };
  k.load_export = [](const std::string& dir, const json& config) -> std::unique_ptr<Policy> {
    const LinearShape s{config.at("obs_dim").get<int>(), config.at("n_actions").get<int>()};
    const auto st = safetensors::read_file(dir + "/model.safetensors");
    return std::make_unique<LinearPolicy>(s, st.at("pi.weight").to_f32("pi.weight"), st.at("pi.bias").to_f32("pi.bias"));
  };
  return k;
}

const char* kBanditLinear = R"(
seed: 4
env: {id: bandit, num_envs: 64, n_contexts: 4, n_actions: 5, masked_trap: true, noise: 0.1}
policy: {kind: linear, init_std: 0.01}
ppo: {num_steps: 4, learning_rate: 0.05, num_minibatches: 4, update_epochs: 4, ent_coef: 0.0, gamma: 0.0, gae_lambda: 0.0}
total_steps: 16384
checkpoint_every: 20
log: {console: false}
)";

TEST(PolicyKinds, AKindRegisteredOutsidePoliciesTrainsCheckpointsAndExports) {
  register_policy_kind(linear_kind());
  const std::string base = testing::temp_dir();
  ConfigDoc doc = ConfigDoc::load_string(kBanditLinear, "linear.yaml");
  TrainOptions opt;
  opt.run_dir = base + "/run";
  opt.console = false;
  const TrainResult r = run_training(doc, opt);
  // A linear softmax over the one-hot context solves this bandit; the seeded run reaches ~0.99.
  EXPECT_GE(r.last.get("charts/optimal"), 0.9);

  // Found by the kind its checkpoint names; acts greedily on the optimal action of every context.
  auto policy = load_policy(opt.run_dir);
  EXPECT_EQ(policy->kind(), "linear");
  BanditConfig bc;
  bc.n_contexts = 4;
  bc.n_actions = 5;
  bc.masked_trap = true;
  const BanditProblem problem = BanditProblem::make(bc);
  std::vector<float> obs(4 * 4, 0.f);
  std::vector<uint8_t> mask(4 * 5);
  for (int c = 0; c < 4; ++c) {
    obs[c * 4 + c] = 1.f;
    for (int a = 0; a < 5; ++a) mask[c * 5 + a] = problem.allowed[c * 5 + a];
  }
  std::vector<int32_t> act(4);
  policy->act(dense_batch(obs.data(), mask.data(), 4, 4, 5), ActOptions{}, act.data(), nullptr);
  for (int c = 0; c < 4; ++c) EXPECT_EQ(act[c], problem.optimal[c]) << "context " << c;

  // Export and load back: the same decisions.
  write_export(base + "/export", export_from_run(opt.run_dir));
  const LoadedExport e = load_export_bundle(base + "/export");
  EXPECT_EQ(e.manifest["policy"]["kind"], "linear");
  std::vector<int32_t> act2(4);
  e.policy->act(dense_batch(obs.data(), mask.data(), 4, 4, 5), ActOptions{}, act2.data(), nullptr);
  EXPECT_EQ(act, act2);

  // An unknown kind in a config is refused with the registered ones listed.
  ConfigDoc bad = ConfigDoc::load_string(std::string(kBanditLinear) + "\n", "bad.yaml");
  bad.apply_override("policy.kind=quadratic");
  TrainOptions opt2 = opt;
  opt2.run_dir = base + "/bad";
  try {
    run_training(bad, opt2);
    FAIL() << "an unknown policy kind was accepted";
  } catch (const Error& ex) {
    EXPECT_NE(std::string(ex.what()).find("quadratic"), std::string::npos) << ex.what();
    EXPECT_NE(std::string(ex.what()).find("linear"), std::string::npos) << ex.what();
  }
}

}  // namespace
}  // namespace conductor
