#include "trainer/algorithm.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/registry.h"
#include "trainer/losses.h"

namespace conductor {

// ---------------------------------------------------------------------------------------------
// EpisodeLog

void EpisodeLog::begin_update(const std::vector<std::string>& extra_names) {
  extra_names_ = extra_names;
  sum_return_ = sum_length_ = 0.0;
  count_ = 0;
  extra_sums_.assign(extra_names.size(), 0.0);
}

void EpisodeLog::record(const EpisodeRecord& r) {
  sum_return_ += r.episode_return;
  sum_length_ += r.length;
  ++count_;
  for (size_t k = 0; k < extra_sums_.size() && k < r.extras.size(); ++k) extra_sums_[k] += r.extras[k];
  ++total;
  recent_returns.push_back(r.episode_return);
  while (recent_returns.size() > kReturnWindow) recent_returns.pop_front();
}

void EpisodeLog::reduce(ProcessGroup& group) {
  if (group.world_size() == 1) return;
  std::vector<double> v{static_cast<double>(count_), sum_return_, sum_length_};
  v.insert(v.end(), extra_sums_.begin(), extra_sums_.end());
  group.sum(v);
  const auto global_count = static_cast<int64_t>(std::llround(v[0]));
  total += global_count - count_;
  count_ = global_count;
  sum_return_ = v[1];
  sum_length_ = v[2];
  for (size_t k = 0; k < extra_sums_.size(); ++k) extra_sums_[k] = v[3 + k];
}

void EpisodeLog::write_episodes(Metrics& m, const std::string& prefix) const {
  m.set(prefix + "episodes", static_cast<double>(count_));
  if (count_ > 0) {
    m.set(prefix + "episodic_return", sum_return_ / count_);
    m.set(prefix + "episodic_length", sum_length_ / count_);
    for (size_t k = 0; k < extra_names_.size(); ++k) m.set(prefix + extra_names_[k], extra_sums_[k] / count_);
  }
}

void EpisodeLog::write(Metrics& m, double learning_rate) const {
  write_episodes(m, "charts/");
  if (!recent_returns.empty()) {
    double s = 0;
    for (double r : recent_returns) s += r;
    m.set("charts/return_ma100", s / recent_returns.size());
  }
  m.set("charts/learning_rate", learning_rate);
}

// ---------------------------------------------------------------------------------------------
// TrainerState

void TrainerState::check_finite(const char* name, double v) const {
  if (!std::isfinite(v))
    throw TrainingDiverged("update " + std::to_string(update) + ": metric '" + name + "' is " +
                           (std::isnan(v) ? "NaN" : "infinite") +
                           "; training stopped without writing a checkpoint for this update (the last "
                           "complete checkpoint in " + run_dir + "/checkpoints is intact)");
}

double TrainerState::optimizer_step(torch::Tensor loss, const std::vector<torch::Tensor>& params,
                                    double max_grad_norm) {
  if (update == options.poison_loss_at_update) loss = loss * std::numeric_limits<float>::quiet_NaN();
  check_finite("losses/loss", loss.item<double>());
  optimizer->zero_grad();
  loss.backward();
  group->average_gradients(params);
  const double gn = torch::nn::utils::clip_grad_norm_(
      params, max_grad_norm > 0 ? max_grad_norm : std::numeric_limits<double>::infinity());
  check_finite("losses/grad_norm", gn);
  optimizer->step();
  return gn;
}

double TrainerState::add_reference_kl(torch::Tensor& loss, double coef, const torch::Tensor& new_log_probs,
                                      const EncodedObs& obs, const torch::Tensor& rows, const torch::Tensor& masks,
                                      const torch::Tensor& actions) {
  if (coef <= 0 || !reference) return 0.0;
  torch::Tensor ref_lp;
  {
    torch::NoGradGuard ng;
    ref_lp = masked_log_probs(reference->logits(obs, rows), masks).gather(1, actions.unsqueeze(1)).squeeze(1);
  }
  const auto rk = kl_to_reference_k3(new_log_probs, ref_lp);
  loss = loss + coef * rk;
  return rk.item<double>();
}

double TrainerState::agreed_mean(double local) const {
  std::vector<double> v{local};
  group->sum(v);
  return group->world_size() == 1 ? v[0] : v[0] / group->world_size();
}

double TrainerState::action_uniform(int64_t global_env) {
  if (!per_env_sampling) return rng.uniform();
  auto it = sampling_streams.find(global_env);
  if (it == sampling_streams.end())
    it = sampling_streams.emplace(global_env, Rng(derive_seed(cfg.seed, 0x5A3, static_cast<uint64_t>(global_env)))).first;
  return it->second.uniform();
}

void TrainerState::shard(VectorEnv& env) {
  if (!env.set_first_index(static_cast<int>(first_env))) envs_indexed = false;
}

uint64_t TrainerState::shard_seed(uint64_t seed) const {
  if (envs_indexed || group->world_size() == 1) return seed;
  return derive_seed(seed, 0xD15, static_cast<uint64_t>(group->rank()));
}

std::vector<int64_t> permutation(int64_t n, Rng& rng) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[static_cast<int64_t>(rng.below(i + 1))]);
  return p;
}

void set_learning_rate(torch::optim::Adam& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
}

// ---------------------------------------------------------------------------------------------
// Registry

// The built-in algorithms, each defined in its own file with its config section. Add one
// declaration and one line per algorithm.
AlgorithmKind ppo_algorithm();
AlgorithmKind grpo_algorithm();
AlgorithmKind bc_algorithm();

namespace {

Registry<AlgorithmKind>& algorithms() {
  static Registry<AlgorithmKind> r([](Registry<AlgorithmKind>& reg) {
    reg.add("ppo", ppo_algorithm());
    reg.add("grpo", grpo_algorithm());
    reg.add("bc", bc_algorithm());
  });
  return r;
}

}  // namespace

void register_algorithm(const std::string& id, AlgorithmKind kind) {
  CONDUCTOR_CHECK(!id.empty() && kind.make && kind.section.empty() == !kind.parse,
                  "algorithm '", id, "' registered without a factory, or with a section but no parse (or the reverse)");
  algorithms().add(id, std::move(kind));
}

std::vector<std::string> algorithm_ids() { return algorithms().ids(); }

std::vector<std::string> algorithm_ids_in_order() { return algorithms().in_order(); }

AlgorithmKind algorithm_kind(const std::string& id) {
  const AlgorithmKind* k = algorithms().find(id);
  if (!k) fail("algo: unknown algorithm '", id, "' (known: ", algorithms().known(), ")");
  return *k;
}

std::unique_ptr<Algorithm> make_algorithm(const RunConfig& cfg) { return algorithm_kind(cfg.algo).make(cfg); }

}  // namespace conductor
