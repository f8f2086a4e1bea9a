// Provider catalog: the workers a conductor can call, with prices, a latency model, an availability
// model and the skill parameters the synthetic world uses (docs/catalog.md).
//
// A catalog is YAML, parsed once through core/config.h (unknown keys, wrong types, missing keys and
// out-of-range values, e.g. a negative price, are errors naming file:line and key path):
//
//   pricing_snapshot: 2026-07-24            # date of the price table the prices were copied from
//   workers:
//     - id: gpt-5
//       provider: openai
//       pricing_key: gpt-5                  # exact key in the LiteLLM price table (optional)
//       price_in_per_mtok: 1.25             # USD per 1M input tokens
//       price_out_per_mtok: 10.0
//       context_window: 272000
//       size_class: frontier                # frontier | mid | small | specialist
//       latency: {fitted_from: together_70b.json, ttft_mu: ..., ttft_sigma: ..., throughput_mu: ...,
//                 throughput_sigma: ..., ttft_scale: 1.5, throughput_scale: 1.0}
//       availability: {outages_per_hour: 0.05, outage_mean_minutes: 20, server_error_rate: 0.005,
//                      rate_limit_rate: 0.01, timeout_s: 60}
//       skill: {math: 2.3, code: 2.0, knowledge: 1.9, reasoning: 2.5, writing: 1.6,
//               discrimination: 1.6, verbosity: 2.0}
//
// The shipped catalog (configs/catalog.yaml) is also compiled in: default_catalog() parses the same
// text, and a test checks that the two are byte-identical.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace conductor {

// Task domains of the synthetic world (and of the catalog's per-domain skill).
enum class Domain : int { kMath = 0, kCode = 1, kKnowledge = 2, kReasoning = 3, kWriting = 4 };
constexpr int kNumDomains = 5;
const char* domain_name(Domain d);
// "math" | "code" | "knowledge" | "reasoning" | "writing"; -1 if unknown.
int domain_index(const std::string& name);

// Time to first token and decode throughput, both lognormal. The (mu, sigma) pairs are the maximum
// likelihood fit of a measured llmperf file (traces/latency_fit.h); the scales shift a measured shape
// to a worker that was not measured itself (documented per worker in the catalog).
// A call's latency is ttft + output_tokens / throughput.
struct LatencyModel {
  std::string fitted_from;        // llmperf file name, e.g. "together_70b.json" ("" = hand-set)
  double ttft_mu = 0.0;           // mean of log(TTFT seconds)
  double ttft_sigma = 0.0;        // sd of log(TTFT seconds), >= 0
  double throughput_mu = 0.0;     // mean of log(decode tokens/s)
  double throughput_sigma = 0.0;  // sd of log(decode tokens/s), >= 0
  double ttft_scale = 1.0;        // multiplies TTFT (> 0)
  double throughput_scale = 1.0;  // multiplies throughput (> 0)

  double effective_ttft_mu() const { return ttft_mu + std::log(ttft_scale); }
  double effective_throughput_mu() const { return throughput_mu + std::log(throughput_scale); }
  double median_ttft_s() const { return std::exp(effective_ttft_mu()); }
  double median_throughput() const { return std::exp(effective_throughput_mu()); }
  static LatencyModel parse(ConfigReader r);
};

// Failures of a provider. Outages are an alternating renewal process on the wall clock (exponential
// up times with rate outages_per_hour, exponential down times with mean outage_mean_minutes); while
// down every call fails with a server error. Outside outages each call independently fails with
// rate_limit_rate (HTTP 429) or server_error_rate (5xx); a call slower than timeout_s times out.
struct AvailabilityModel {
  double outages_per_hour = 0.0;     // >= 0
  double outage_mean_minutes = 0.0;  // >= 0
  double server_error_rate = 0.0;    // in [0, 1]
  double rate_limit_rate = 0.0;      // in [0, 1]; server_error_rate + rate_limit_rate <= 1
  double timeout_s = 60.0;           // > 0

  // Long-run share of wall-clock time the provider is down.
  double outage_fraction() const {
    const double down_h = outage_mean_minutes / 60.0;
    return outages_per_hour * down_h / (1.0 + outages_per_hour * down_h);
  }
  static AvailabilityModel parse(ConfigReader r);
};

// Item-response parameters of the synthetic world: P(correct) = sigmoid(discrimination *
// (skill[domain] - difficulty)); verbosity multiplies the domain's typical output length.
struct SkillModel {
  std::array<double, kNumDomains> skill{};  // per Domain, on the difficulty scale
  double discrimination = 1.5;              // > 0
  double verbosity = 1.0;                   // > 0
  static SkillModel parse(ConfigReader r);
};

struct WorkerSpec {
  std::string id;           // unique, e.g. "gpt-5"
  std::string provider;     // e.g. "openai"
  std::string pricing_key;  // key in the LiteLLM price table, "" if not from it
  double price_in_per_mtok = 0.0;   // USD per 1M input tokens, >= 0
  double price_out_per_mtok = 0.0;  // USD per 1M output tokens, >= 0
  int64_t context_window = 0;       // tokens, 0 = unknown
  std::string size_class;           // frontier | mid | small | specialist
  LatencyModel latency;
  AvailabilityModel availability;
  SkillModel skill;

  double cost_usd(double input_tokens, double output_tokens) const {
    return (price_in_per_mtok * input_tokens + price_out_per_mtok * output_tokens) * 1e-6;
  }
  static WorkerSpec parse(ConfigReader r);
};

struct Catalog {
  std::string pricing_snapshot;  // "YYYY-MM-DD"
  std::string name;              // file the catalog was read from
  std::vector<WorkerSpec> workers;

  int index_of(const std::string& id) const;  // -1 if absent
  static Catalog parse(ConfigReader r);
};

// Loads and validates a catalog file.
Catalog load_catalog(const std::string& path);
// Parses catalog YAML text; `name` is used in error messages.
Catalog parse_catalog(const std::string& yaml_text, const std::string& name);

// The shipped catalog compiled into the binary (identical to configs/catalog.yaml).
const std::string& default_catalog_yaml();
Catalog default_catalog();

}  // namespace conductor
