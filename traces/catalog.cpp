#include "traces/catalog.h"

#include <regex>
#include <set>

namespace conductor {

namespace {
constexpr const char* kDomainNames[kNumDomains] = {"math", "code", "knowledge", "reasoning", "writing"};
const std::vector<std::string> kSizeClasses = {"frontier", "mid", "small", "specialist"};
}  // namespace

const char* domain_name(Domain d) {
  const int i = static_cast<int>(d);
  CONDUCTOR_CHECK(i >= 0 && i < kNumDomains, "domain ", i);
  return kDomainNames[i];
}

int domain_index(const std::string& name) {
  for (int i = 0; i < kNumDomains; ++i)
    if (name == kDomainNames[i]) return i;
  return -1;
}

LatencyModel LatencyModel::parse(ConfigReader r) {
  LatencyModel m;
  m.fitted_from = r.get<std::string>("fitted_from", "");
  m.ttft_mu = r.required_in<double>("ttft_mu", -20.0, 20.0);
  m.ttft_sigma = r.required_in<double>("ttft_sigma", 0.0, 10.0);
  m.throughput_mu = r.required_in<double>("throughput_mu", -20.0, 20.0);
  m.throughput_sigma = r.required_in<double>("throughput_sigma", 0.0, 10.0);
  m.ttft_scale = r.get_in<double>("ttft_scale", 1.0, 1e-6, 1e6);
  m.throughput_scale = r.get_in<double>("throughput_scale", 1.0, 1e-6, 1e6);
  r.finish();
  return m;
}

AvailabilityModel AvailabilityModel::parse(ConfigReader r) {
  AvailabilityModel a;
  a.outages_per_hour = r.get_in<double>("outages_per_hour", 0.0, 0.0, 3600.0);
  a.outage_mean_minutes = r.get_in<double>("outage_mean_minutes", 0.0, 0.0, 1e6);
  if (a.outages_per_hour > 0 && a.outage_mean_minutes <= 0)
    r.fail_at("outage_mean_minutes", "must be > 0 when outages_per_hour > 0");
  a.server_error_rate = r.get_in<double>("server_error_rate", 0.0, 0.0, 1.0);
  a.rate_limit_rate = r.get_in<double>("rate_limit_rate", 0.0, 0.0, 1.0);
  if (a.server_error_rate + a.rate_limit_rate > 1.0)
    r.fail_at("rate_limit_rate", "server_error_rate + rate_limit_rate must be <= 1");
  a.timeout_s = r.get_in<double>("timeout_s", 60.0, 1e-3, 1e6);
  r.finish();
  return a;
}

SkillModel SkillModel::parse(ConfigReader r) {
  SkillModel s;
  for (int d = 0; d < kNumDomains; ++d) s.skill[d] = r.required_in<double>(kDomainNames[d], -10.0, 10.0);
  s.discrimination = r.get_in<double>("discrimination", 1.5, 1e-3, 20.0);
  s.verbosity = r.get_in<double>("verbosity", 1.0, 1e-3, 100.0);
  r.finish();
  return s;
}

WorkerSpec WorkerSpec::parse(ConfigReader r) {
  WorkerSpec w;
  w.id = r.required<std::string>("id");
  if (w.id.empty()) r.fail_at("id", "must not be empty");
  w.provider = r.required<std::string>("provider");
  w.pricing_key = r.get<std::string>("pricing_key", "");
  w.price_in_per_mtok = r.required_in<double>("price_in_per_mtok", 0.0, 1e6);
  w.price_out_per_mtok = r.required_in<double>("price_out_per_mtok", 0.0, 1e6);
  w.context_window = r.get_in<int64_t>("context_window", 0, 0, int64_t(1) << 40);
  w.size_class = r.get_choice("size_class", "mid", kSizeClasses);
  w.latency = LatencyModel::parse(r.child("latency"));
  w.availability = AvailabilityModel::parse(r.child("availability"));
  w.skill = SkillModel::parse(r.child("skill"));
  r.finish();
  return w;
}

Catalog Catalog::parse(ConfigReader r) {
  Catalog c;
  c.pricing_snapshot = r.required<std::string>("pricing_snapshot");
  static const std::regex date_re(R"(^\d{4}-\d{2}-\d{2}$)");
  if (!std::regex_match(c.pricing_snapshot, date_re))
    r.fail_at("pricing_snapshot", "expected a date YYYY-MM-DD, got '" + c.pricing_snapshot + "'");
  if (!r.has("workers")) r.fail_at("workers", "required key is missing (expected a list of workers)");
  auto list = r.child_list("workers");
  if (list.empty()) r.fail_at("workers", "expected at least one worker");
  std::set<std::string> seen;
  for (auto& wr : list) {
    const std::string where = wr.where("id");
    WorkerSpec w = WorkerSpec::parse(wr);
    if (!seen.insert(w.id).second) throw ConfigError(where + ": duplicate worker id '" + w.id + "'");
    c.workers.push_back(std::move(w));
  }
  r.finish();
  return c;
}

int Catalog::index_of(const std::string& id) const {
  for (std::size_t i = 0; i < workers.size(); ++i)
    if (workers[i].id == id) return static_cast<int>(i);
  return -1;
}

Catalog load_catalog(const std::string& path) {
  ConfigDoc doc = ConfigDoc::load_file(path);
  Catalog c = Catalog::parse(doc.root());
  c.name = path;
  return c;
}

Catalog parse_catalog(const std::string& yaml_text, const std::string& name) {
  ConfigDoc doc = ConfigDoc::load_string(yaml_text, name);
  Catalog c = Catalog::parse(doc.root());
  c.name = name;
  return c;
}

Catalog default_catalog() { return parse_catalog(default_catalog_yaml(), "<embedded configs/catalog.yaml>"); }

}  // namespace conductor

// The shipped catalog, byte-identical to configs/catalog.yaml (checked by tests/traces/catalog_test.cpp).
// Regenerate after editing the YAML with the command in docs/catalog.md.
// BEGIN EMBEDDED CATALOG
namespace conductor {
const std::string& default_catalog_yaml() {
  static const std::string text = R"CATALOG(# Conductor provider catalog: the shipped default (docs/catalog.md).
#
# Prices: USD per 1M tokens, copied from LiteLLM's price table, snapshot 2026-07-24
#   (../shared/data/pricing/model_prices_and_context_window.2026-07-24.json); `pricing_key` is the
#   exact key in that table. Check with:
#   conductor traces catalog --prices ../shared/data/pricing/model_prices_and_context_window.2026-07-24.json
# Latency: lognormal TTFT (s) and decode throughput (tokens/s) fitted by maximum likelihood to the
#   measured per-request records in ../shared/data/llmperf/individual/<fitted_from>
#   (conductor traces fit-latency --input ../shared/data/llmperf/individual). Those files measure
#   Llama-2 7B/13B/70B on eight hosts; each worker takes the shape of the measured host and size class
#   nearest to it, and ttft_scale / throughput_scale (1.0 = as measured) move the median of a worker
#   that was not measured itself. The scales are our assumptions, not measurements (docs/catalog.md).
# Availability: outages (per hour, mean minutes), per-call 5xx and 429 rates, client timeout.
#   Rates are assumptions except where a comment names the llmperf file they were counted in.
# Skill: item-response parameters of the synthetic world (traces/synth.h): per-domain ability on the
#   difficulty scale, discrimination, and verbosity (x the domain's typical output length).
pricing_snapshot: 2026-07-24
workers:
  # ---------------- frontier APIs: 70B-class shapes, scaled ----------------
  - id: gpt-5
    provider: openai
    pricing_key: gpt-5
    price_in_per_mtok: 1.25
    price_out_per_mtok: 10.0
    context_window: 272000
    size_class: frontier
    latency:  # llmperf together_70b.json; TTFT x2 (larger model, API queueing)
      fitted_from: together_70b.json
      ttft_mu: -0.4845
      ttft_sigma: 0.1425
      throughput_mu: 4.4448
      throughput_sigma: 0.1329
      ttft_scale: 2.0
      throughput_scale: 1.0
    availability: {outages_per_hour: 0.05, outage_mean_minutes: 15, server_error_rate: 0.005, rate_limit_rate: 0.01, timeout_s: 60}
    # verbosity 2.2: reasoning tokens are billed and generated as output
    skill: {math: 2.6, code: 2.4, knowledge: 2.2, reasoning: 2.9, writing: 2.0, discrimination: 1.7, verbosity: 2.2}

  - id: claude-sonnet-4-5
    provider: anthropic
    pricing_key: claude-sonnet-4-5
    price_in_per_mtok: 3.0
    price_out_per_mtok: 15.0
    context_window: 200000
    size_class: frontier
    latency:  # llmperf anyscale_70b.json; TTFT x4
      fitted_from: anyscale_70b.json
      ttft_mu: -1.4252
      ttft_sigma: 0.2549
      throughput_mu: 4.2458
      throughput_sigma: 0.2147
      ttft_scale: 4.0
      throughput_scale: 1.0
    availability: {outages_per_hour: 0.08, outage_mean_minutes: 20, server_error_rate: 0.01, rate_limit_rate: 0.01, timeout_s: 60}
    skill: {math: 2.2, code: 2.8, knowledge: 2.1, reasoning: 2.4, writing: 2.5, discrimination: 1.6, verbosity: 1.3}

  - id: gemini-2.5-pro
    provider: google
    pricing_key: gemini/gemini-2.5-pro
    price_in_per_mtok: 1.25
    price_out_per_mtok: 10.0
    context_window: 1048576
    size_class: frontier
    latency:  # llmperf fireworks_70b.json; TTFT x3, throughput x2
      fitted_from: fireworks_70b.json
      ttft_mu: -0.7008
      ttft_sigma: 0.2433
      throughput_mu: 3.8342
      throughput_sigma: 0.0696
      ttft_scale: 3.0
      throughput_scale: 2.0
    availability: {outages_per_hour: 0.05, outage_mean_minutes: 15, server_error_rate: 0.005, rate_limit_rate: 0.01, timeout_s: 60}
    skill: {math: 2.4, code: 2.1, knowledge: 2.5, reasoning: 2.6, writing: 2.1, discrimination: 1.6, verbosity: 1.6}

  # ---------------- small API models: 7B/13B-class shapes, scaled ----------------
  - id: gpt-5-mini
    provider: openai
    pricing_key: gpt-5-mini
    price_in_per_mtok: 0.25
    price_out_per_mtok: 2.0
    context_window: 272000
    size_class: small
    latency:  # llmperf together_13b.json; TTFT x1.5, throughput x0.8
      fitted_from: together_13b.json
      ttft_mu: -0.5449
      ttft_sigma: 0.6358
      throughput_mu: 5.0405
      throughput_sigma: 0.1085
      ttft_scale: 1.5
      throughput_scale: 0.8
    availability: {outages_per_hour: 0.05, outage_mean_minutes: 15, server_error_rate: 0.005, rate_limit_rate: 0.01, timeout_s: 60}
    skill: {math: 1.9, code: 1.7, knowledge: 1.3, reasoning: 1.9, writing: 1.3, discrimination: 1.5, verbosity: 1.8}

  - id: claude-haiku-4-5
    provider: anthropic
    pricing_key: claude-haiku-4-5
    price_in_per_mtok: 1.0
    price_out_per_mtok: 5.0
    context_window: 200000
    size_class: small
    latency:  # llmperf anyscale_13b.json; TTFT x2.5
      fitted_from: anyscale_13b.json
      ttft_mu: -1.5344
      ttft_sigma: 0.1927
      throughput_mu: 4.9706
      throughput_sigma: 0.1394
      ttft_scale: 2.5
      throughput_scale: 1.0
    availability: {outages_per_hour: 0.08, outage_mean_minutes: 20, server_error_rate: 0.01, rate_limit_rate: 0.01, timeout_s: 60}
    skill: {math: 1.3, code: 1.8, knowledge: 1.1, reasoning: 1.2, writing: 1.6, discrimination: 1.5, verbosity: 1.0}

  - id: gemini-2.5-flash
    provider: google
    pricing_key: gemini/gemini-2.5-flash
    price_in_per_mtok: 0.3
    price_out_per_mtok: 2.5
    context_window: 1048576
    size_class: small
    latency:  # llmperf fireworks_7b.json; TTFT x1.5, throughput x2.5
      fitted_from: fireworks_7b.json
      ttft_mu: -1.1379
      ttft_sigma: 0.2213
      throughput_mu: 4.5092
      throughput_sigma: 0.0300
      ttft_scale: 1.5
      throughput_scale: 2.5
    availability: {outages_per_hour: 0.05, outage_mean_minutes: 15, server_error_rate: 0.005, rate_limit_rate: 0.01, timeout_s: 60}
    skill: {math: 1.6, code: 1.4, knowledge: 1.7, reasoning: 1.5, writing: 1.4, discrimination: 1.5, verbosity: 1.2}

  # ---------------- open models on cheap hosts ----------------
  - id: deepseek-v3.2
    provider: deepseek
    pricing_key: deepseek/deepseek-chat
    price_in_per_mtok: 0.28
    price_out_per_mtok: 0.42
    context_window: 131072
    size_class: mid
    latency:  # llmperf perplexity_70b.json (the slowest 70B-class API host); TTFT x1.5
      fitted_from: perplexity_70b.json
      ttft_mu: -0.9006
      ttft_sigma: 0.2414
      throughput_mu: 3.4959
      throughput_sigma: 0.0983
      ttft_scale: 1.5
      throughput_scale: 1.0
    # rate_limit_rate 0.0133: 2 of 150 requests got HTTP 429 in perplexity_70b.json
    availability: {outages_per_hour: 0.1, outage_mean_minutes: 30, server_error_rate: 0.01, rate_limit_rate: 0.0133, timeout_s: 30}
    skill: {math: 2.0, code: 2.0, knowledge: 1.4, reasoning: 1.8, writing: 1.5, discrimination: 1.5, verbosity: 1.3}

  - id: llama-3.3-70b-together
    provider: together
    pricing_key: together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo
    price_in_per_mtok: 0.88
    price_out_per_mtok: 0.88
    context_window: 0  # the price table gives none
    size_class: mid
    latency:  # llmperf together_70b.json, as measured (same host, same size)
      fitted_from: together_70b.json
      ttft_mu: -0.4845
      ttft_sigma: 0.1425
      throughput_mu: 4.4448
      throughput_sigma: 0.1329
      ttft_scale: 1.0
      throughput_scale: 1.0
    # server_error_rate 0.0067: 1 of 150 requests failed in together_13b.json (0 of 150 in together_70b.json)
    availability: {outages_per_hour: 0.05, outage_mean_minutes: 10, server_error_rate: 0.0067, rate_limit_rate: 0.005, timeout_s: 60}
    skill: {math: 1.0, code: 1.0, knowledge: 1.4, reasoning: 0.8, writing: 1.3, discrimination: 1.4, verbosity: 1.0}

  - id: llama-3.1-8b-groq
    provider: groq
    pricing_key: groq/llama-3.1-8b-instant
    price_in_per_mtok: 0.05
    price_out_per_mtok: 0.08
    context_window: 128000
    size_class: small
    latency:  # llmperf groq_70b.json (same host); throughput x2 for the 8B model
      fitted_from: groq_70b.json
      ttft_mu: -1.4974
      ttft_sigma: 0.1889
      throughput_mu: 5.5460
      throughput_sigma: 0.0782
      ttft_scale: 1.0
      throughput_scale: 2.0
    availability: {outages_per_hour: 0.1, outage_mean_minutes: 10, server_error_rate: 0.005, rate_limit_rate: 0.03, timeout_s: 60}
    skill: {math: 0.6, code: 0.6, knowledge: 0.9, reasoning: 0.4, writing: 1.1, discrimination: 1.3, verbosity: 0.9}

  - id: codestral-2508
    provider: mistral
    pricing_key: mistral/codestral-2508
    price_in_per_mtok: 0.3
    price_out_per_mtok: 0.9
    context_window: 256000
    size_class: specialist
    latency:  # llmperf fireworks_13b.json; TTFT x1.5, throughput x1.5
      fitted_from: fireworks_13b.json
      ttft_mu: -0.7677
      ttft_sigma: 0.1943
      throughput_mu: 3.8733
      throughput_sigma: 0.0254
      ttft_scale: 1.5
      throughput_scale: 1.5
    availability: {outages_per_hour: 0.05, outage_mean_minutes: 15, server_error_rate: 0.005, rate_limit_rate: 0.01, timeout_s: 60}
    skill: {math: 0.5, code: 2.3, knowledge: 0.2, reasoning: 0.3, writing: 0.1, discrimination: 1.6, verbosity: 0.8}
)CATALOG";
  return text;
}
}  // namespace conductor
// END EMBEDDED CATALOG
