#include "policies/actor_critic.h"

#include <cmath>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

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

torch::Tensor masked_log_probs(const torch::Tensor& logits, const torch::Tensor& mask) {
  const auto masked = logits.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  return torch::log_softmax(masked, -1);
}

torch::Tensor masked_entropy(const torch::Tensor& log_probs) {
  const auto finite = torch::isfinite(log_probs);
  const auto safe = torch::where(finite, log_probs, torch::zeros_like(log_probs));
  return -(safe.exp() * safe).masked_fill(finite.logical_not(), 0.0).sum(-1);
}

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

ActorCritic clone_actor_critic(ActorCritic& model) {
  ActorCritic copy(model->spec());
  torch::NoGradGuard ng;
  auto src = model->named_parameters();
  for (auto& p : copy->named_parameters()) p.value().copy_(src[p.key()]);
  return copy;
}

void save_model_files(ActorCritic& model, const std::string& dir) {
  {
    AtomicOutput out(dir + "/model.pt");
    torch::save(model, out.temp_path());
    out.commit();
  }
  write_file_atomic(dir + "/policy.json", model->spec().to_json().dump(2) + "\n");
}

namespace {
MlpSpec read_spec(const std::string& ckpt) {
  const std::string path = ckpt + "/policy.json";
  return MlpSpec::from_json(parse_json(read_file(path), path), path);
}
}  // namespace

void load_model_files(ActorCritic& model, const std::string& checkpoint_dir) {
  const MlpSpec spec = read_spec(checkpoint_dir);
  const MlpSpec& have = model->spec();
  if (spec.obs_dim != have.obs_dim || spec.n_actions != have.n_actions || spec.hidden != have.hidden ||
      spec.activation != have.activation)
    fail(checkpoint_dir, "/policy.json: policy shape ", spec.to_json().dump(), " does not match the config's ",
         have.to_json().dump());
  try {
    torch::load(model, checkpoint_dir + "/model.pt");
  } catch (const c10::Error& e) {
    fail(checkpoint_dir, "/model.pt: cannot load the model: ", e.what_without_backtrace());
  }
}

std::vector<NamedTensor> load_mlp_tensors(const std::string& run_or_checkpoint_dir, MlpSpec* spec_out) {
  const std::string ckpt = resolve_checkpoint_dir(run_or_checkpoint_dir);
  const MlpSpec spec = read_spec(ckpt);
  ActorCritic model(spec);
  load_model_files(model, ckpt);
  if (spec_out) *spec_out = spec;
  return named_tensors(model);
}

}  // namespace conductor
