#include "world/outcome_model.h"

#include <cmath>

#include "core/error.h"
#include "core/random.h"

namespace conductor {

RewardModelKind parse_reward_model_kind(const std::string& s) {
  if (s == "replay") return RewardModelKind::kReplay;
  if (s == "model") return RewardModelKind::kModel;
  if (s == "hybrid") return RewardModelKind::kHybrid;
  fail("unknown reward model '", s, "': expected replay, model or hybrid");
}

const char* reward_model_name(RewardModelKind k) {
  switch (k) {
    case RewardModelKind::kReplay: return "replay";
    case RewardModelKind::kModel: return "model";
    case RewardModelKind::kHybrid: return "hybrid";
  }
  return "?";
}

OutcomeTable build_outcomes(const TraceSet& traces, const std::vector<float>& features, int dim,
                            RewardModelKind kind, const WorldPredictors* predictors, uint64_t seed) {
  const std::size_t N = traces.n_queries(), M = traces.n_models();
  if (!traces.has_outcomes()) fail("rewards: the trace set has no /outcomes: nothing to replay");
  if (kind != RewardModelKind::kReplay && !predictors)
    fail("rewards: reward model '", reward_model_name(kind), "' needs fitted predictors");
  OutcomeTable t;
  t.n_queries = N;
  t.n_models = M;
  t.quality.assign(N * M, kMissingF);
  t.cost_usd.assign(N * M, kMissingD);
  t.latency_s.assign(N * M, kMissingF);
  t.output_tokens.assign(N * M, kMissingI);
  t.answer.assign(N * M, -1);
  t.error.assign(N * M, kOk);
  t.available.assign(N * M, 0);
  t.predicted.assign(N * M, 0);

  auto logged = [&](std::size_t k) {
    return !std::isnan(traces.quality[k]) && !std::isnan(traces.cost_usd[k]);
  };
  std::vector<int32_t> wrong_ids;
  for (std::size_t q = 0; q < N; ++q) {
    // The query's logged correct answer and its distinct wrong answers (for predicted answers).
    int32_t correct = -1;
    wrong_ids.clear();
    for (std::size_t m = 0; m < M; ++m) {
      const std::size_t k = traces.at(q, m);
      if (traces.answer.empty() || traces.answer[k] < 0 || std::isnan(traces.quality[k])) continue;
      if (traces.quality[k] >= 0.5f) {
        if (correct < 0) correct = traces.answer[k];
      } else {
        bool seen = false;
        for (int32_t w : wrong_ids) seen |= (w == traces.answer[k]);
        if (!seen) wrong_ids.push_back(traces.answer[k]);
      }
    }
    for (std::size_t m = 0; m < M; ++m) {
      const std::size_t k = traces.at(q, m);
      const bool replay = kind != RewardModelKind::kModel && logged(k);
      if (replay) {
        t.quality[k] = traces.quality[k];
        t.cost_usd[k] = traces.cost_usd[k];
        t.output_tokens[k] = traces.output_tokens.empty() ? kMissingI : traces.output_tokens[k];
        t.answer[k] = traces.answer.empty() ? -1 : traces.answer[k];
        t.error[k] = (traces.error.empty() || traces.error[k] == kErrorMissing) ? uint8_t{kOk} : traces.error[k];
        float lat = traces.latency_s.empty() ? kMissingF : traces.latency_s[k];
        if (std::isnan(lat)) {
          if (!predictors)
            fail("rewards: /outcomes/latency_s[", q, ",", m, "] is not logged; replay needs the latency model ",
                 "(fit predictors) for traces without latency");
          lat = static_cast<float>(predictors->latency(m).mean(std::max(0, t.output_tokens[k])));
        }
        t.latency_s[k] = lat;
        t.available[k] = 1;
        continue;
      }
      if (kind == RewardModelKind::kReplay) continue;  // not logged: unavailable
      Rng rng(derive_seed(seed, q, m));
      const float* x = features.data() + q * static_cast<std::size_t>(dim);
      const double p = predictors->quality_prob(m, x);
      double quality = p;
      if (predictors->binary_quality(m)) quality = rng.bernoulli(p) ? 1.0 : 0.0;
      const int tokens = predictors->output_tokens(m, x);
      t.quality[k] = static_cast<float>(quality);
      t.output_tokens[k] = tokens;
      t.cost_usd[k] = predictors->cost_usd(traces, q, m, tokens);
      t.latency_s[k] = static_cast<float>(predictors->latency(m).sample(tokens, rng));
      if (quality >= 0.5)
        t.answer[k] = correct;
      else
        t.answer[k] = wrong_ids.empty() ? -1 : wrong_ids[rng.below(wrong_ids.size())];
      t.error[k] = kOk;
      t.available[k] = 1;
      t.predicted[k] = 1;
    }
  }
  return t;
}

}  // namespace conductor
