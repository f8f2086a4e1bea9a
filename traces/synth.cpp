#include "traces/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/hash.h"
#include "core/stats.h"
#include "core/random.h"

namespace conductor {

namespace {

// Stream ids for derive_seed: each kind of draw has its own stream so that changing one part of the
// model (e.g. the text) leaves the others (difficulty, outcomes) as they were.
constexpr uint64_t kQueryStream = 0x51554552ULL;    // domain, difficulty, text, answers
constexpr uint64_t kSplitStream = 0x53504C54ULL;    // split assignment
constexpr uint64_t kCallSalt = 0x43414C4C5F5F5F5FULL;    // per (worker, query) outcome
constexpr uint64_t kOutageSalt = 0x4F55544147455F5FULL;  // per worker outage timeline

const DomainSpec kDomainSpecs[kNumDomains] = {
    // name, difficulty mean, options, output tokens, input tokens
    {"math", 1.0, 5, 220.0, 150.0},
    {"code", 0.9, 0, 280.0, 220.0},
    {"knowledge", 0.5, 4, 80.0, 110.0},
    {"reasoning", 1.2, 4, 240.0, 260.0},
    {"writing", 0.7, 0, 380.0, 140.0},
};

constexpr double kDifficultySd = 1.2;
constexpr double kOutputSigma = 0.4;
constexpr double kInputSigma = 0.35;
constexpr double kLengthDifficultySlope = 0.15;  // log output tokens per unit difficulty
constexpr double kInputDifficultySlope = 0.2;
constexpr double kWritingNoise = 0.1;
constexpr int kCodeTests = 5;


double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

template <std::size_t N>
const char* pick(Rng& rng, const char* const (&words)[N]) {
  return words[rng.below(N)];
}

// ---- query text: domain words + difficulty cues (a surrogate the hashed n-gram featurizer can use)
const char* const kTopics[kNumDomains][16] = {
    {"integer", "fraction", "probability", "triangle", "polynomial", "derivative", "integral", "prime",
     "sequence", "matrix", "logarithm", "percentage", "equation", "circle", "modular", "combinatorics"},
    {"function", "list", "string", "sorting", "dictionary", "recursion", "array", "parser", "regex", "class",
     "loop", "binary-search", "linked-list", "hash-map", "iterator", "tuple"},
    {"capital", "history", "chemistry", "biology", "planet", "treaty", "element", "river", "author", "anatomy",
     "economics", "law", "painting", "century", "physics", "geography"},
    {"puzzle", "premise", "conclusion", "schedule", "seating", "liar", "ordering", "constraint", "syllogism",
     "analogy", "pattern", "riddle", "inference", "truth-table", "clue", "tournament"},
    {"essay", "email", "summary", "poem", "story", "paragraph", "tone", "audience", "headline", "cover-letter",
     "review", "slogan", "outline", "rewrite", "dialogue", "blog-post"},
};
const char* const kVerbs[kNumDomains][4] = {
    {"Compute the", "Solve for the", "Find the value of the", "Evaluate the"},
    {"Write a Python function for the", "Implement the", "Fix the bug in the", "Refactor the"},
    {"Which statement about the", "Identify the", "What is true of the", "Recall the"},
    {"Deduce the", "Given the clues, determine the", "Which follows from the", "Resolve the"},
    {"Write a", "Draft a", "Compose a", "Edit the"},
};
const char* const kCues[3][5] = {
    {"Quick question:", "Simple:", "Basic check:", "In one step,", "Easy one:"},
    {"Consider the following.", "Work through this:", "Moderate:", "Explain briefly:", "Think it through:"},
    {"Challenging:", "Prove rigorously:", "Multi-step problem:", "Olympiad-level:", "Carefully justify each step:"},
};
const char* const kConnectors[] = {"of the", "with the", "given the", "about the", "using the", "and the"};
const char* const kSuffix[kNumDomains] = {
    "Choose one option (A-E).", "Return only code.", "Choose one option (A-D).", "Choose one option (A-D).",
    "About 200 words."};

std::string make_text(Rng& rng, Domain d, Level cue_level, double difficulty) {
  const int di = static_cast<int>(d);
  std::string t = kCues[static_cast<int>(cue_level)][rng.below(5)];
  t += ' ';
  t += pick(rng, kVerbs[di]);
  t += ' ';
  t += pick(rng, kTopics[di]);
  // Harder queries mention more concepts (a second, weaker length cue).
  const int extra = 1 + (difficulty > 0.0) + (difficulty > kHardAbove);
  for (int k = 0; k < extra; ++k) {
    t += ' ';
    t += pick(rng, kConnectors);
    t += ' ';
    t += pick(rng, kTopics[di]);
  }
  t += ". ";
  t += kSuffix[di];
  return t;
}

// Down intervals [start, end) of a worker on the virtual clock, from a stationary alternating renewal
// process (up ~ Exp(outages_per_hour), down ~ Exp(1 / outage_mean_minutes)).
std::vector<std::pair<double, double>> outage_timeline(const AvailabilityModel& a, uint64_t seed, double horizon_s) {
  std::vector<std::pair<double, double>> down;
  if (a.outages_per_hour <= 0.0 || a.outage_mean_minutes <= 0.0) return down;
  Rng rng(seed);
  const double up_rate = a.outages_per_hour / 3600.0;          // per second
  const double down_rate = 1.0 / (a.outage_mean_minutes * 60.0);
  double t = 0.0;
  // Start in the stationary state: down with probability outage_fraction (residual times are
  // exponential again by memorylessness).
  bool is_down = rng.bernoulli(a.outage_fraction());
  while (t <= horizon_s) {
    if (is_down) {
      const double end = t + rng.exponential(down_rate);
      down.emplace_back(t, end);
      t = end;
    } else {
      t += rng.exponential(up_rate);
    }
    is_down = !is_down;
  }
  return down;
}

bool in_outage(const std::vector<std::pair<double, double>>& down, double t) {
  auto it = std::upper_bound(down.begin(), down.end(), t,
                             [](double v, const std::pair<double, double>& iv) { return v < iv.first; });
  if (it == down.begin()) return false;
  --it;
  return t >= it->first && t < it->second;
}

}  // namespace

const DomainSpec& domain_spec(Domain d) {
  const int i = static_cast<int>(d);
  CONDUCTOR_CHECK(i >= 0 && i < kNumDomains, "domain ", i);
  return kDomainSpecs[i];
}

Level difficulty_level(double b) {
  if (b < kEasyBelow) return Level::kEasy;
  if (b > kHardAbove) return Level::kHard;
  return Level::kMedium;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::kEasy: return "easy";
    case Level::kMedium: return "medium";
    case Level::kHard: return "hard";
  }
  return "?";
}

SynthConfig SynthConfig::parse(ConfigReader r) {
  SynthConfig c;
  c.queries = r.get_in<int64_t>("queries", c.queries, 1, int64_t(1) << 31);
  c.seed = r.get<uint64_t>("seed", c.seed);
  c.test_fraction = r.get_in<double>("test_fraction", c.test_fraction, 0.0, 1.0);
  c.validation_fraction = r.get_in<double>("validation_fraction", c.validation_fraction, 0.0, 1.0);
  if (c.test_fraction + c.validation_fraction > 1.0)
    r.fail_at("validation_fraction", "test_fraction + validation_fraction must be <= 1");
  ConfigReader mix = r.child("domain_mix");
  double sum = 0.0;
  for (int d = 0; d < kNumDomains; ++d) {
    c.domain_mix[d] = mix.get_in<double>(kDomainSpecs[d].name, c.domain_mix[d], 0.0, 1e9);
    sum += c.domain_mix[d];
  }
  mix.finish();
  if (!(sum > 0.0)) r.fail_at("domain_mix", "weights must not all be 0");
  c.queries_per_second = r.get_in<double>("queries_per_second", c.queries_per_second, 1e-9, 1e9);
  c.cue_fidelity = r.get_in<double>("cue_fidelity", c.cue_fidelity, 0.0, 1.0);
  r.finish();
  return c;
}

namespace {

// Checks the config against the catalog; returns the sum of the domain-mix weights.
double check_synth_config(const SynthConfig& cfg, const Catalog& catalog) {
  if (cfg.queries < 1) fail("synth: queries must be >= 1, got ", cfg.queries);
  if (!(cfg.test_fraction >= 0 && cfg.validation_fraction >= 0 && cfg.test_fraction + cfg.validation_fraction <= 1.0))
    fail("synth: test_fraction ", cfg.test_fraction, " and validation_fraction ", cfg.validation_fraction,
         " must be >= 0 with a sum <= 1");
  if (catalog.workers.empty()) fail("synth: the catalog ", catalog.name, " has no workers");
  if (!(cfg.queries_per_second > 0)) fail("synth: queries_per_second must be > 0");
  double mix_sum = 0.0;
  for (double w : cfg.domain_mix) {
    if (!(w >= 0.0)) fail("synth: domain_mix weights must be >= 0");
    mix_sum += w;
  }
  if (!(mix_sum > 0.0)) fail("synth: domain_mix weights must not all be 0");
  return mix_sum;
}

// A TraceSet of N queries x the catalog's workers: source and model columns filled, every
// per-query and per-call column sized.
TraceSet sized_trace_set(const SynthConfig& cfg, const Catalog& catalog, std::size_t N) {
  const std::size_t M = catalog.workers.size();
  TraceSet ts;
  ts.source = detail::concat("conductor synthetic world seed=", cfg.seed, " catalog=", catalog.name,
                             " pricing_snapshot=", catalog.pricing_snapshot);
  for (const auto& w : catalog.workers) {
    ts.model_name.push_back(w.id);
    ts.model_provider.push_back(w.provider);
    ts.price_in_per_mtok.push_back(w.price_in_per_mtok);
    ts.price_out_per_mtok.push_back(w.price_out_per_mtok);
  }
  ts.query_id.resize(N);
  ts.query_task.resize(N);
  ts.query_text.resize(N);
  ts.input_tokens.resize(N);
  ts.split.resize(N);
  ts.quality.resize(N * M);
  ts.cost_usd.resize(N * M);
  ts.latency_s.resize(N * M);
  ts.output_tokens.resize(N * M);
  ts.answer.resize(N * M);
  ts.error.resize(N * M);
  return ts;
}

// The hidden per-query variables the calls are drawn from.
struct QueryLatents {
  std::vector<int> domain;
  std::vector<double> difficulty, alpha, arrival;
  std::vector<int32_t> correct, attractive;
  explicit QueryLatents(std::size_t N)
      : domain(N), difficulty(N), alpha(N), arrival(N), correct(N), attractive(N) {}
};

// Query i: its domain, difficulty, text, answers, input tokens, id and arrival from its own query
// stream, and its split from its own split stream.
void synth_query(const SynthConfig& cfg, double mix_sum, std::size_t i, TraceSet& ts, QueryLatents& lat) {
  Rng rng(derive_seed(cfg.seed, kQueryStream, i));
  double u = rng.uniform() * mix_sum;
  int d = 0;
  while (d < kNumDomains - 1 && u >= cfg.domain_mix[d]) u -= cfg.domain_mix[d++];
  while (cfg.domain_mix[d] <= 0.0) --d;  // guards rounding at the top end
  const DomainSpec& spec = kDomainSpecs[d];
  const double b = rng.normal(spec.difficulty_mean, kDifficultySd);
  Level cue = difficulty_level(b);
  if (!rng.bernoulli(cfg.cue_fidelity)) cue = static_cast<Level>(rng.below(3));
  lat.domain[i] = d;
  lat.difficulty[i] = b;
  ts.query_text[i] = make_text(rng, static_cast<Domain>(d), cue, b);
  if (spec.options > 0) {
    lat.correct[i] = static_cast<int32_t>(rng.below(spec.options));
    lat.attractive[i] = static_cast<int32_t>((lat.correct[i] + 1 + rng.below(spec.options - 1)) % spec.options);
    lat.alpha[i] = rng.uniform(0.2, 0.8);
  } else {
    lat.correct[i] = lat.attractive[i] = -1;
    lat.alpha[i] = 0.0;
  }
  const double in_tokens = rng.lognormal(std::log(spec.base_input_tokens) + kInputDifficultySlope * b, kInputSigma);
  ts.input_tokens[i] = static_cast<int32_t>(std::max(1.0, std::round(in_tokens)));
  char id[32];
  std::snprintf(id, sizeof id, "synth-%07zu", i);
  ts.query_id[i] = id;
  ts.query_task[i] = spec.name;
  lat.arrival[i] = static_cast<double>(i) / cfg.queries_per_second;

  Rng split_rng(derive_seed(cfg.seed, kSplitStream, i));
  const double s = split_rng.uniform();
  ts.split[i] = static_cast<uint8_t>(s < cfg.test_fraction ? Split::kTest
                                     : s < cfg.test_fraction + cfg.validation_fraction ? Split::kValidation
                                                                                       : Split::kTrain);
}

// Every call of worker m (of M): outage timeline, then per query a fixed sequence of draws from the
// (worker, query) stream, whatever the branch taken.
void synth_worker_calls(const SynthConfig& cfg, const WorkerSpec& w, std::size_t m, std::size_t M, double horizon,
                        const QueryLatents& lat, TraceSet& ts) {
  const std::size_t N = lat.domain.size();
  const uint64_t wkey = fnv1a64(w.id);
  const auto down = outage_timeline(w.availability, derive_seed(cfg.seed ^ kOutageSalt, wkey), horizon);
  const double ttft_mu = w.latency.effective_ttft_mu();
  const double tput_mu = w.latency.effective_throughput_mu();
  const AvailabilityModel& av = w.availability;
  for (std::size_t i = 0; i < N; ++i) {
    Rng rng(derive_seed(cfg.seed ^ kCallSalt, wkey, i));
    const std::size_t k = i * M + m;
    const int d = lat.domain[i];
    const DomainSpec& spec = kDomainSpecs[d];
    // Fixed draw order, whatever the branch taken.
    const double u_fail = rng.uniform();
    const double ttft = rng.lognormal(ttft_mu, w.latency.ttft_sigma);
    const double tput = rng.lognormal(tput_mu, w.latency.throughput_sigma);
    const double out_len = rng.lognormal(
        std::log(spec.base_output_tokens * w.skill.verbosity) + kLengthDifficultySlope * lat.difficulty[i], kOutputSigma);
    const double u_know = rng.uniform();
    const double u_wrong = rng.uniform();
    const uint64_t guess = spec.options > 0 ? rng.below(spec.options) : rng.below(kCodeTests);
    const double noise = rng.normal();

    uint8_t err = kOk;
    if (in_outage(down, lat.arrival[i])) err = kServerError;
    else if (u_fail < av.rate_limit_rate) err = kRateLimited;
    else if (u_fail < av.rate_limit_rate + av.server_error_rate) err = kServerError;
    const int32_t out_tokens = static_cast<int32_t>(std::clamp(std::round(out_len), 1.0, 65536.0));
    double latency = ttft;
    if (err == kOk) {
      latency = ttft + out_tokens / tput;
      if (latency > av.timeout_s) {
        err = kTimeout;
        latency = av.timeout_s;
      }
    }
    ts.error[k] = err;
    ts.latency_s[k] = static_cast<float>(latency);
    if (err != kOk) {
      ts.quality[k] = 0.0f;
      ts.answer[k] = -1;
      ts.output_tokens[k] = 0;
      ts.cost_usd[k] = 0.0;
      continue;
    }
    ts.output_tokens[k] = out_tokens;
    ts.cost_usd[k] = w.cost_usd(ts.input_tokens[i], out_tokens);
    const double p = sigmoid(w.skill.discrimination * (w.skill.skill[d] - lat.difficulty[i]));
    const bool knows = u_know < p;
    if (spec.options > 0) {
      int32_t a = lat.correct[i];
      if (!knows) a = u_wrong < lat.alpha[i] ? lat.attractive[i] : static_cast<int32_t>(guess);
      ts.answer[k] = a;
      ts.quality[k] = a == lat.correct[i] ? 1.0f : 0.0f;
    } else if (static_cast<Domain>(d) == Domain::kCode) {
      ts.answer[k] = -1;
      ts.quality[k] = knows ? 1.0f : static_cast<float>(guess) / kCodeTests;
    } else {
      ts.answer[k] = -1;
      ts.quality[k] = static_cast<float>(std::clamp(p + kWritingNoise * noise, 0.0, 1.0));
    }
  }
}

}  // namespace

TraceSet synthesize(const SynthConfig& config, const Catalog& catalog) {
  return synthesize(config, catalog, nullptr);
}

TraceSet synthesize(const SynthConfig& cfg, const Catalog& catalog, SynthLatents* latents) {
  const double mix_sum = check_synth_config(cfg, catalog);
  const std::size_t N = static_cast<std::size_t>(cfg.queries);
  const std::size_t M = catalog.workers.size();
  TraceSet ts = sized_trace_set(cfg, catalog, N);
  QueryLatents lat(N);

  // ---- queries
  for (std::size_t i = 0; i < N; ++i) synth_query(cfg, mix_sum, i, ts, lat);

  // ---- calls
  const double horizon = lat.arrival.back() + 1.0;
  for (std::size_t m = 0; m < M; ++m) synth_worker_calls(cfg, catalog.workers[m], m, M, horizon, lat, ts);

  if (latents) {
    latents->domain = std::move(lat.domain);
    latents->difficulty = std::move(lat.difficulty);
    latents->correct = std::move(lat.correct);
    latents->attractive = std::move(lat.attractive);
    latents->arrival_s = std::move(lat.arrival);
  }
  return ts;
}

}  // namespace conductor

namespace conductor {

namespace {
double quantile_of(std::vector<double> x, double p) { return x.empty() ? std::nan("") : percentile(std::move(x), p); }

// Plurality answer among the successful multiple-choice answers of query q (ties: smallest id), -1 if none.
int32_t plurality(const TraceSet& ts, std::size_t q, int options, int skip_model = -1) {
  std::array<int, 8> votes{};
  bool any = false;
  for (std::size_t m = 0; m < ts.n_models(); ++m) {
    if (static_cast<int>(m) == skip_model) continue;
    const int32_t a = ts.answer[ts.at(q, m)];
    if (a >= 0 && a < options) {
      ++votes[a];
      any = true;
    }
  }
  if (!any) return -1;
  return static_cast<int32_t>(std::max_element(votes.begin(), votes.begin() + options) - votes.begin());
}
}  // namespace

std::vector<WorkerStats> synth_statistics(const TraceSet& ts, const SynthLatents& lat) {
  const std::size_t N = ts.n_queries(), M = ts.n_models();
  CONDUCTOR_CHECK(lat.domain.size() == N && lat.difficulty.size() == N, "latents do not match the traces");
  std::vector<WorkerStats> out(M);
  for (std::size_t m = 0; m < M; ++m) {
    WorkerStats& s = out[m];
    s.worker = ts.model_name[m];
    std::array<double, kNumDomains> qsum{}, qn{};
    double easy_sum = 0, easy_n = 0, hr_sum = 0, hr_n = 0, cost = 0, out_tok = 0, n_ok = 0, agree = 0, agree_n = 0;
    std::array<double, 4> errs{};
    std::vector<double> lat_s(N);
    for (std::size_t q = 0; q < N; ++q) {
      const std::size_t k = ts.at(q, m);
      const int d = lat.domain[q];
      const double qual = ts.quality[k];
      qsum[d] += qual;
      qn[d] += 1;
      const Level lv = difficulty_level(lat.difficulty[q]);
      if (lv == Level::kEasy) {
        easy_sum += qual;
        easy_n += 1;
      }
      if (lv == Level::kHard && d == static_cast<int>(Domain::kReasoning)) {
        hr_sum += qual;
        hr_n += 1;
      }
      cost += ts.cost_usd[k];
      lat_s[q] = ts.latency_s[k];
      errs[std::min<int>(ts.error[k], 3)] += 1;
      if (ts.error[k] == kOk) {
        out_tok += ts.output_tokens[k];
        n_ok += 1;
      }
      const int options = domain_spec(static_cast<Domain>(d)).options;
      if (options > 0 && ts.answer[k] >= 0) {
        agree += ts.answer[k] == plurality(ts, q, options) ? 1 : 0;
        agree_n += 1;
      }
    }
    double all = 0;
    for (int d = 0; d < kNumDomains; ++d) {
      s.accuracy[d] = qn[d] > 0 ? qsum[d] / qn[d] : std::nan("");
      all += qsum[d];
    }
    s.accuracy_all = all / N;
    s.accuracy_easy = easy_n > 0 ? easy_sum / easy_n : std::nan("");
    s.accuracy_hard_reasoning = hr_n > 0 ? hr_sum / hr_n : std::nan("");
    s.mean_cost_usd = cost / N;
    s.mean_output_tokens_ok = n_ok > 0 ? out_tok / n_ok : std::nan("");
    s.latency_p50 = quantile_of(lat_s, 50);
    s.latency_p95 = quantile_of(lat_s, 95);
    s.latency_p99 = quantile_of(lat_s, 99);
    s.error_rate = 1.0 - errs[0] / N;
    for (int e = 0; e < 4; ++e) s.error_share[e] = errs[e] / N;
    s.agreement_with_majority = agree_n > 0 ? agree / agree_n : std::nan("");
  }
  return out;
}

std::string format_synth_statistics(const TraceSet& ts, const SynthLatents& lat) {
  const auto stats = synth_statistics(ts, lat);
  const std::size_t N = ts.n_queries(), M = ts.n_models();
  std::string o;
  char buf[512];
  // Query mix.
  std::array<int, kNumDomains> dn{};
  std::array<int, 3> ln{};
  std::array<int, 3> sn{};
  for (std::size_t q = 0; q < N; ++q) {
    ++dn[lat.domain[q]];
    ++ln[static_cast<int>(difficulty_level(lat.difficulty[q]))];
    ++sn[ts.split[q]];
  }
  std::snprintf(buf, sizeof buf, "queries: %zu (train %d, validation %d, test %d); workers: %zu\n\n", N, sn[0], sn[1],
                sn[2], M);
  o += buf;
  o += "| domain | share |\n|---|---|\n";
  for (int d = 0; d < kNumDomains; ++d) {
    std::snprintf(buf, sizeof buf, "| %s | %.3f |\n", kDomainSpecs[d].name, double(dn[d]) / N);
    o += buf;
  }
  o += "\n| difficulty level | share |\n|---|---|\n";
  for (int l = 0; l < 3; ++l) {
    std::snprintf(buf, sizeof buf, "| %s | %.3f |\n", level_name(static_cast<Level>(l)), double(ln[l]) / N);
    o += buf;
  }
  o += "\nAccuracy (mean quality; failed calls count 0) by domain, on easy queries (all domains) and on hard "
       "reasoning:\n\n";
  o += "| worker | math | code | knowledge | reasoning | writing | all | easy | hard reasoning |\n";
  o += "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : stats) {
    std::snprintf(buf, sizeof buf, "| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", s.worker.c_str(),
                  s.accuracy[0], s.accuracy[1], s.accuracy[2], s.accuracy[3], s.accuracy[4], s.accuracy_all,
                  s.accuracy_easy, s.accuracy_hard_reasoning);
    o += buf;
  }
  o += "\nCost, tokens, latency and failures per call:\n\n";
  o += "| worker | $/call | $/1k calls | out tokens (ok) | latency p50 s | p95 s | p99 s | errors | timeout | "
       "429 | 5xx | agrees w/ plurality |\n";
  o += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : stats) {
    std::snprintf(buf, sizeof buf,
                  "| %s | %.6f | %.3f | %.0f | %.2f | %.2f | %.2f | %.4f | %.4f | %.4f | %.4f | %.3f |\n",
                  s.worker.c_str(), s.mean_cost_usd, 1000 * s.mean_cost_usd, s.mean_output_tokens_ok, s.latency_p50,
                  s.latency_p95, s.latency_p99, s.error_rate, s.error_share[kTimeout], s.error_share[kRateLimited],
                  s.error_share[kServerError], s.agreement_with_majority);
    o += buf;
  }
  // Agreement carries information: accuracy of an answer that agrees with the plurality of the other
  // workers versus one that does not; and the plurality vote of all workers.
  double agree_c = 0, agree_n = 0, dis_c = 0, dis_n = 0, vote_c = 0, vote_n = 0;
  double best_single = 0;
  for (std::size_t q = 0; q < N; ++q) {
    const int options = kDomainSpecs[lat.domain[q]].options;
    if (options == 0) continue;
    const int32_t v = plurality(ts, q, options);
    vote_n += 1;
    vote_c += v == lat.correct[q] ? 1 : 0;
    for (std::size_t m = 0; m < M; ++m) {
      const int32_t a = ts.answer[ts.at(q, m)];
      if (a < 0) continue;
      const int32_t others = plurality(ts, q, options, static_cast<int>(m));
      if (others < 0) continue;
      if (a == others) {
        agree_n += 1;
        agree_c += a == lat.correct[q];
      } else {
        dis_n += 1;
        dis_c += a == lat.correct[q];
      }
    }
  }
  for (std::size_t m = 0; m < M; ++m) {
    double c = 0;
    for (std::size_t q = 0; q < N; ++q)
      if (kDomainSpecs[lat.domain[q]].options > 0) c += ts.quality[ts.at(q, m)];
    best_single = std::max(best_single, vote_n > 0 ? c / vote_n : 0.0);
  }
  std::snprintf(buf, sizeof buf,
                "\nMultiple-choice queries (%.0f): plurality vote of all workers is correct on %.3f (best single worker "
                "%.3f); an answer that agrees with the other workers' plurality is correct %.3f of the time, one that "
                "disagrees %.3f.\n",
                vote_n, vote_n > 0 ? vote_c / vote_n : 0.0, best_single, agree_n > 0 ? agree_c / agree_n : 0.0,
                dis_n > 0 ? dis_c / dis_n : 0.0);
  o += buf;
  return o;
}

}  // namespace conductor
