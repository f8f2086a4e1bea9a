#include "eval/simulate_logs.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "core/random.h"

namespace conductor::eval {

std::string LoggingPolicy::id() const {
  if (epsilon >= 1.0) return "uniform";
  std::ostringstream os;
  os << "epsilon-greedy:" << epsilon;
  return os.str();
}

double LoggingPolicy::prob(int a, int n_models) const {
  const double base = epsilon / n_models;
  return a == greedy && epsilon < 1.0 ? 1.0 - epsilon + base : base;
}

std::vector<std::size_t> complete_queries(const TraceSet& traces, Split split) {
  std::vector<std::size_t> out;
  for (std::size_t q : traces.split_indices(split)) {
    bool ok = true;
    for (std::size_t m = 0; m < traces.n_models() && ok; ++m) {
      const auto k = traces.at(q, m);
      ok = std::isfinite(traces.quality[k]) && std::isfinite(traces.cost_usd[k]);
    }
    if (ok) out.push_back(q);
  }
  return out;
}

LoggingPolicy parse_logging_policy(const std::string& spec, const TraceSet& traces) {
  LoggingPolicy p;
  if (spec == "uniform") return p;
  const std::string prefix = "epsilon-greedy:";
  if (spec.rfind(prefix, 0) != 0)
    fail("--logging '", spec, "': expected 'uniform' or 'epsilon-greedy:<eps>' with eps in (0, 1]");
  const std::string num = spec.substr(prefix.size());
  char* end = nullptr;
  const double eps = std::strtod(num.c_str(), &end);
  if (num.empty() || *end != '\0' || !(eps > 0.0 && eps <= 1.0))
    fail("--logging '", spec, "': epsilon must be a number in (0, 1] (a zero epsilon gives the other "
         "models zero propensity, which no off-policy estimator can correct)");
  p.epsilon = eps;
  const auto train = complete_queries(traces, Split::kTrain);
  if (train.empty()) fail("--logging ", spec, ": the greedy model is chosen on the training split, which has no complete rows");
  double best = -1;
  for (std::size_t m = 0; m < traces.n_models(); ++m) {
    double s = 0;
    for (std::size_t q : train) s += traces.quality[traces.at(q, m)];
    if (s > best) {
      best = s;
      p.greedy = static_cast<int>(m);
    }
  }
  return p;
}

TraceSet simulate_logs(const TraceSet& traces, Split split, const LoggingPolicy& logging, std::size_t n,
                       uint64_t seed) {
  if (!traces.has_outcomes()) fail("simulate-logs needs full-information traces with /outcomes (", traces.source, ")");
  if (n == 0) fail("simulate-logs: --n must be at least 1");
  const auto rows = complete_queries(traces, split);
  if (rows.empty())
    fail("simulate-logs: split '", split_name(split), "' has no query with quality and cost logged for every model");
  const int M = static_cast<int>(traces.n_models());
  TraceSet out;
  out.source = traces.source + " | simulate-logs " + logging.id() + " split=" + split_name(split) +
               " n=" + std::to_string(n) + " seed=" + std::to_string(seed);
  out.model_name = traces.model_name;
  out.model_provider = traces.model_provider;
  out.price_in_per_mtok = traces.price_in_per_mtok;
  out.price_out_per_mtok = traces.price_out_per_mtok;
  out.query_id = traces.query_id;
  out.query_task = traces.query_task;
  out.query_text = traces.query_text;
  out.query_embedding = traces.query_embedding;
  out.embedding_dim = traces.embedding_dim;
  out.embedding_model = traces.embedding_model;
  out.embedding_sha256 = traces.embedding_sha256;
  out.input_tokens = traces.input_tokens;
  out.split = traces.split;
  Decisions& d = out.decisions;
  Rng rng(seed);
  std::vector<double> cdf(M);
  double acc = 0;
  for (int a = 0; a < M; ++a) cdf[a] = (acc += logging.prob(a, M));
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t q = rows[rng.below(rows.size())];
    const double u = rng.uniform() * acc;
    int a = 0;
    while (a + 1 < M && u >= cdf[a]) ++a;
    const auto k = traces.at(q, a);
    d.query.push_back(static_cast<int64_t>(q));
    d.action.push_back(a);
    d.propensity.push_back(logging.prob(a, M));
    const bool failed = !traces.error.empty() && traces.error[k] != kOk && traces.error[k] != kErrorMissing;
    d.quality.push_back(failed ? 0.0f : traces.quality[k]);
    d.cost_usd.push_back(traces.cost_usd[k]);
    d.latency_s.push_back(traces.latency_s.empty() ? kMissingF : traces.latency_s[k]);
    d.timestamp_ms.push_back(static_cast<int64_t>(i) * 1000);
    for (int m = 0; m < M; ++m) d.available.push_back(1);
    d.policy.push_back(logging.id());
  }
  return out;
}

}  // namespace conductor::eval
