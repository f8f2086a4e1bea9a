// The embedded default world: a seeded generator of full-information traces (every catalog worker
// on every query). The generative model is documented in docs/synthetic-world.md; in short:
//
//   domain ~ Categorical(domain_mix); difficulty b ~ Normal(mean_d, 1.2)
//   P(correct | worker w) = sigmoid(discrimination_w * (skill_w,d - b))           (2PL item response)
//   math / knowledge / reasoning are multiple choice (5 / 4 / 4 options): a worker that does not
//     know the answer picks the query's attractive distractor with probability alpha_q, otherwise
//     guesses uniformly, so agreement between workers carries information (and can mislead).
//   code: quality 1 when correct, else the share of 5 unit tests passed in {0, .2, .4, .6, .8};
//   writing: a graded score clamp(P + Normal(0, 0.1), 0, 1). Both have answer -1 (not comparable).
//   output tokens ~ Lognormal(log(base_d * verbosity_w) + 0.15 b, 0.4); cost = catalog prices x tokens;
//   latency = ttft + output_tokens / throughput from the worker's fitted lognormals;
//   failures: provider outages on a virtual wall clock, 429s, 5xx and timeouts from the availability
//     model. A failed call has quality 0, answer -1, output_tokens 0, cost 0 and its error code set.
//
// Every random draw comes from core/random.h Rng seeded with derive_seed(seed, stream, index): a
// query's text, difficulty and split depend only on (seed, query index); a call's outcome only on
// (seed, worker id, query index). Results never depend on iteration order, and adding a worker to the
// catalog does not change the other workers' outcomes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "traces/catalog.h"
#include "traces/trace_set.h"

namespace conductor {

struct SynthConfig {
  int64_t queries = 1000;            // number of queries, >= 1
  uint64_t seed = 0;                 // base seed
  double test_fraction = 0.2;        // share of queries in the test split
  double validation_fraction = 0.1;  // share in the validation split (the rest is train)
  // Relative weights of math, code, knowledge, reasoning, writing (normalized; >= 0, sum > 0).
  std::array<double, kNumDomains> domain_mix = {0.25, 0.2, 0.2, 0.2, 0.15};
  // Arrival rate on the virtual wall clock that outages live on (query i arrives at i / rate).
  double queries_per_second = 0.2;
  // Probability that the difficulty cue in a query's text matches its true difficulty level
  // (otherwise a level is drawn uniformly), so text predicts difficulty, imperfectly.
  double cue_fidelity = 0.75;

  // YAML keys: queries, seed, test_fraction, validation_fraction, domain_mix {math, code, knowledge,
  // reasoning, writing}, queries_per_second, cue_fidelity.
  static SynthConfig parse(ConfigReader r);
};

// Difficulty levels used for the text cue and the documented statistics.
enum class Level : int { kEasy = 0, kMedium = 1, kHard = 2 };
constexpr double kEasyBelow = 0.0;  // difficulty < 0: easy
constexpr double kHardAbove = 2.0;  // difficulty > 2.0: hard
Level difficulty_level(double difficulty);
const char* level_name(Level l);

// The world's hidden variables, for tests and documentation (never written to the trace file).
struct SynthLatents {
  std::vector<int> domain;           // Domain per query
  std::vector<double> difficulty;    // b per query
  std::vector<int32_t> correct;      // correct option for multiple choice, -1 otherwise
  std::vector<int32_t> attractive;   // attractive distractor, -1 otherwise
  std::vector<double> arrival_s;     // virtual arrival time
};

// Generates the world. Throws conductor::Error on an invalid config (fractions, empty catalog).
TraceSet synthesize(const SynthConfig& config, const Catalog& catalog);
TraceSet synthesize(const SynthConfig& config, const Catalog& catalog, SynthLatents* latents);

// Measured statistics of a generated world, per worker (the tables in docs/synthetic-world.md).
struct WorkerStats {
  std::string worker;
  std::array<double, kNumDomains> accuracy{};  // mean quality per domain, failed calls included as 0
  double accuracy_all = 0.0;
  double accuracy_easy = 0.0;            // all domains, difficulty level easy
  double accuracy_hard_reasoning = 0.0;  // reasoning, difficulty level hard
  double mean_cost_usd = 0.0;            // per call, failed calls included (cost 0)
  double mean_output_tokens_ok = 0.0;    // successful calls
  double latency_p50 = 0.0, latency_p95 = 0.0, latency_p99 = 0.0;  // seconds, all calls
  double error_rate = 0.0;
  std::array<double, 4> error_share{};  // by ErrorCode 0..3
  double agreement_with_majority = 0.0;  // multiple choice: share of answers equal to the plurality answer
};
std::vector<WorkerStats> synth_statistics(const TraceSet& traces, const SynthLatents& latents);
// Markdown tables of synth_statistics (plus the world's query mix).
std::string format_synth_statistics(const TraceSet& traces, const SynthLatents& latents);

// Per-domain constants of the generative model (documented in docs/synthetic-world.md).
struct DomainSpec {
  const char* name;
  double difficulty_mean;
  int options;                 // multiple-choice options, 0 = graded (answer -1)
  double base_output_tokens;   // typical output length before verbosity
  double base_input_tokens;    // typical prompt length (few-shot context included)
};
const DomainSpec& domain_spec(Domain d);

}  // namespace conductor
