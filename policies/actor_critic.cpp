#include "policies/actor_critic.h"

#include <cmath>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "artifacts/safetensors.h"

namespace conductor {

namespace {
torch::nn::Sequential make_trunk(const MlpSpec& spec, int out, double head_gain) {
  torch::nn::Sequential seq;
  int in = spec.obs_dim;
  auto add_linear = [&](int o, double gain) {
    torch::nn::Linear lin(in, o);
    torch::NoGradGuard ng;
    torch::nn::init::orthogonal_(lin->weight, gain);
    torch::nn::init::constant_(lin->bias, 0.0);
    seq->push_back(lin);
    in = o;
  };
  for (int h : spec.hidden) {
    add_linear(h, std::sqrt(2.0));
    if (spec.activation == "tanh") seq->push_back(torch::nn::Tanh());
    else seq->push_back(torch::nn::ReLU());
  }
  add_linear(out, head_gain);
  return seq;
}
}  // namespace

ActorCriticImpl::ActorCriticImpl(const MlpSpec& spec) : spec_(spec) {
  CONDUCTOR_CHECK(spec.obs_dim > 0 && spec.n_actions > 0, "bad MLP spec");
  // CleanRL builds the critic first, then the actor; the order fixes which random draws each gets.
  critic = register_module("critic", make_trunk(spec, 1, 1.0));
  actor = register_module("actor", make_trunk(spec, spec.n_actions, 0.01));
}

torch::Tensor ActorCriticImpl::logits(const torch::Tensor& obs) { return actor->forward(obs); }
torch::Tensor ActorCriticImpl::value(const torch::Tensor& obs) { return critic->forward(obs).squeeze(-1); }

std::vector<NamedTensor> named_tensors(ActorCritic& model) {
  std::vector<NamedTensor> out;
  for (const auto& p : model->named_parameters()) {
    NamedTensor t;
    t.name = p.key();
    const auto c = p.value().detach().to(torch::kFloat32).contiguous();
    for (auto d : c.sizes()) t.shape.push_back(d);
    t.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    out.push_back(std::move(t));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// MlpModel

void MlpModel::encode(const ObsBatch& obs, EncodedObs& out) const {
  const int D = module_->spec().obs_dim;
  CONDUCTOR_CHECK(obs.dense && obs.dense_dim == D, "MLP encode: observation batch without ", D, " dense floats");
  CONDUCTOR_CHECK(out.dense_dim == D || out.rows == 0, "MLP encode into rows of width ", out.dense_dim);
  out.dense_dim = D;
  out.dense.insert(out.dense.end(), obs.dense, obs.dense + static_cast<std::size_t>(obs.n) * D);
  out.rows += obs.n;
}

torch::Tensor MlpModel::rows_of(const EncodedObs& enc, const torch::Tensor& rows) const {
  const auto all = torch::from_blob(const_cast<float*>(enc.dense.data()), {enc.rows, enc.dense_dim}, torch::kFloat32);
  return all.index_select(0, rows);
}

PolicyOutput MlpModel::forward(const EncodedObs& enc, const torch::Tensor& rows) {
  const auto obs = rows_of(enc, rows);
  return {module_->logits(obs), module_->value(obs)};
}

torch::Tensor MlpModel::logits(const EncodedObs& enc, const torch::Tensor& rows) {
  return module_->logits(rows_of(enc, rows));
}

torch::Tensor MlpModel::value(const EncodedObs& enc, const torch::Tensor& rows) {
  return module_->value(rows_of(enc, rows));
}

void MlpModel::save_weights(const std::string& path) {
  AtomicOutput out(path);
  torch::save(module_, out.temp_path());
  out.commit();
}

void MlpModel::load_weights(const std::string& path) {
  try {
    torch::load(module_, path);
  } catch (const c10::Error& e) {
    fail(path, ": cannot load the model: ", e.what_without_backtrace());
  }
}

void MlpModel::save(const std::string& dir) {
  save_weights(dir + "/model.pt");
  write_file_atomic(dir + "/policy.json", module_->spec().to_json().dump(2) + "\n");
}

namespace {
MlpSpec read_spec(const std::string& ckpt) {
  const std::string path = ckpt + "/policy.json";
  return MlpSpec::from_json(parse_json(read_file(path), path), path);
}
}  // namespace

void MlpModel::load(const std::string& dir) {
  const MlpSpec spec = read_spec(dir);
  const MlpSpec& have = module_->spec();
  if (spec.obs_dim != have.obs_dim || spec.n_actions != have.n_actions || spec.hidden != have.hidden ||
      spec.activation != have.activation)
    fail(dir, "/policy.json: policy shape ", spec.to_json().dump(), " does not match the config's ",
         have.to_json().dump());
  load_weights(dir + "/model.pt");
}

std::unique_ptr<PolicyModel> MlpModel::frozen_copy() {
  ActorCritic copy(module_->spec());
  torch::NoGradGuard ng;
  auto src = module_->named_parameters();
  for (auto& p : copy->named_parameters()) p.value().copy_(src[p.key()]);
  return std::make_unique<MlpModel>(copy);
}

std::unique_ptr<Policy> MlpModel::inference_policy() {
  return make_mlp_policy(module_->spec(), named_tensors(module_));
}

// ---------------------------------------------------------------------------------------------
// The kind

namespace {
constexpr const char* kModelFile = "model.safetensors";

// Only the actor is needed to act; the critic stays out of inference policies and exports.
std::vector<NamedTensor> actor_tensors(const std::string& checkpoint_dir, MlpSpec* spec_out) {
  std::vector<NamedTensor> actor;
  for (auto& t : load_mlp_tensors(checkpoint_dir, spec_out))
    if (t.name.rfind("actor.", 0) == 0) actor.push_back(std::move(t));
  return actor;
}
}  // namespace

std::vector<NamedTensor> load_mlp_tensors(const std::string& run_or_checkpoint_dir, MlpSpec* spec_out) {
  const std::string ckpt = resolve_checkpoint_dir(run_or_checkpoint_dir);
  const MlpSpec spec = read_spec(ckpt);
  MlpModel model(spec);
  model.load(ckpt);
  if (spec_out) *spec_out = spec;
  return named_tensors(model.module());
}

ExportedPolicy mlp_exported_policy(const MlpSpec& spec, const std::vector<NamedTensor>& tensors) {
  safetensors::File st;
  st.metadata["format"] = "pt";
  st.metadata["conductor.policy_kind"] = "mlp";
  for (const auto& t : tensors) {
    if (st.tensors.count(t.name)) fail("export: tensor '", t.name, "' appears twice");
    st.tensors[t.name] = safetensors::Tensor::from_f32(t.shape, t.data);
  }
  ExportedPolicy e;
  e.config = spec.to_json();
  e.files.push_back({kModelFile, safetensors::serialize(st)});
  return e;
}

PolicyKind mlp_policy_kind() {
  PolicyKind k;
  k.kind = "mlp";
  k.parse = [](ConfigReader& r) -> std::shared_ptr<const PolicySettings> { return MlpSettings::parse(r); };
  k.make_model = [](const PolicySettings& settings, const EnvSpec& env) -> std::unique_ptr<PolicyModel> {
    const auto& s = static_cast<const MlpSettings&>(settings);
    return std::make_unique<MlpModel>(MlpSpec::from(s, env.obs_dim, env.n_actions));
  };
  k.load_checkpoint = [](const std::string& dir) -> std::unique_ptr<Policy> {
    MlpSpec spec;
    auto tensors = actor_tensors(dir, &spec);
    return make_mlp_policy(spec, tensors);
  };
  k.export_policy = [](const std::string& dir) {
    MlpSpec spec;
    const auto tensors = actor_tensors(dir, &spec);
    return mlp_exported_policy(spec, tensors);
  };
  k.load_export = [](const std::string& dir, const json& config) -> std::unique_ptr<Policy> {
    const std::string model_path = dir + "/" + kModelFile;
    const MlpSpec spec = MlpSpec::from_json(config, dir + "/manifest.json: policy.config");
    const safetensors::File st = safetensors::read_file(model_path);
    std::vector<NamedTensor> tensors;
    for (const auto& [name, t] : st.tensors) {
      NamedTensor nt;
      nt.name = name;
      nt.shape = t.shape;
      nt.data = t.to_f32(name);
      tensors.push_back(std::move(nt));
    }
    try {
      return make_mlp_policy(spec, tensors);
    } catch (const Error& e) {
      fail(model_path, ": ", e.what());
    }
  };
  return k;
}

}  // namespace conductor
