// Tests of the provider catalog: parsing, validation errors with file:line and key, the shipped
// catalog (embedded copy identical to configs/catalog.yaml), its prices against the LiteLLM snapshot
// and its latency blocks against the llmperf fits (both skip without ../shared/data).
#include "traces/catalog.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/atomic_file.h"
#include "traces/latency_fit.h"
#include "traces/pricing.h"
#include "tests/test_util.h"

namespace conductor {
namespace {

// A minimal valid catalog; line numbers below refer to this text (line 1 = "pricing_snapshot").
const char* kMinimal = R"(pricing_snapshot: 2026-07-24
workers:
  - id: small
    provider: host
    price_in_per_mtok: 0.1
    price_out_per_mtok: 0.2
    latency: {ttft_mu: -1.0, ttft_sigma: 0.2, throughput_mu: 4.0, throughput_sigma: 0.1}
    skill: {math: 0, code: 0, knowledge: 0, reasoning: 0, writing: 0}
)";

TEST(Catalog, ParsesMinimalWithDefaults) {
  const Catalog c = parse_catalog(kMinimal, "mini.yaml");
  EXPECT_EQ(c.pricing_snapshot, "2026-07-24");
  ASSERT_EQ(c.workers.size(), 1u);
  const WorkerSpec& w = c.workers[0];
  EXPECT_EQ(w.id, "small");
  EXPECT_EQ(w.size_class, "mid");
  EXPECT_DOUBLE_EQ(w.latency.ttft_scale, 1.0);
  EXPECT_DOUBLE_EQ(w.availability.timeout_s, 60.0);
  EXPECT_DOUBLE_EQ(w.availability.outage_fraction(), 0.0);
  EXPECT_DOUBLE_EQ(w.skill.discrimination, 1.5);
  // 1000 input tokens at $0.1/M + 500 output tokens at $0.2/M = 0.0001 + 0.0001.
  EXPECT_NEAR(w.cost_usd(1000, 500), 0.0002, 1e-15);
  EXPECT_EQ(c.index_of("small"), 0);
  EXPECT_EQ(c.index_of("big"), -1);
}

TEST(Catalog, DerivedLatencyAndAvailability) {
  LatencyModel m;
  m.ttft_mu = std::log(0.5);
  m.ttft_scale = 2.0;
  m.throughput_mu = std::log(100.0);
  m.throughput_scale = 0.5;
  EXPECT_NEAR(m.median_ttft_s(), 1.0, 1e-12);
  EXPECT_NEAR(m.median_throughput(), 50.0, 1e-12);
  AvailabilityModel a;
  a.outages_per_hour = 0.5;  // one outage every 2 h up-time, 30 min down: 0.25 / 1.25 = 0.2 of the time
  a.outage_mean_minutes = 30;
  EXPECT_NEAR(a.outage_fraction(), 0.2, 1e-12);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

void expect_catalog_error(const std::string& text, const std::vector<std::string>& needles) {
  try {
    parse_catalog(text, "cat.yaml");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
  }
}

TEST(Catalog, ValidationErrorsNameFileLineAndKey) {
  // Unknown key (line 5), listing the valid ones.
  expect_catalog_error(replace(kMinimal, "    price_in_per_mtok: 0.1\n", "    price_in_per_mtok: 0.1\n    colour: red\n"),
                       {"cat.yaml:6", "unknown key 'workers[0].colour'", "price_out_per_mtok"});
  // Negative price (line 5).
  expect_catalog_error(replace(kMinimal, "price_in_per_mtok: 0.1", "price_in_per_mtok: -0.1"),
                       {"cat.yaml:5", "key 'workers[0].price_in_per_mtok'", "out of range"});
  // Missing required key: the worker mapping starts at line 3.
  expect_catalog_error(replace(kMinimal, "    price_out_per_mtok: 0.2\n", ""),
                       {"cat.yaml:3", "key 'workers[0].price_out_per_mtok'", "required key is missing"});
  // Wrong type (line 6).
  expect_catalog_error(replace(kMinimal, "price_out_per_mtok: 0.2", "price_out_per_mtok: cheap"),
                       {"cat.yaml:6", "workers[0].price_out_per_mtok", "expected a number, got 'cheap'"});
  // Unknown domain inside skill (line 8).
  expect_catalog_error(replace(kMinimal, "writing: 0}", "writing: 0, poetry: 1}"),
                       {"cat.yaml:8", "unknown key 'workers[0].skill.poetry'"});
  // Missing domain in skill.
  expect_catalog_error(replace(kMinimal, ", writing: 0}", "}"), {"cat.yaml:8", "workers[0].skill.writing"});
  // Negative sigma and a bad size class.
  expect_catalog_error(replace(kMinimal, "ttft_sigma: 0.2", "ttft_sigma: -0.2"),
                       {"cat.yaml:7", "workers[0].latency.ttft_sigma"});
  expect_catalog_error(replace(kMinimal, "    provider: host\n", "    provider: host\n    size_class: huge\n"),
                       {"cat.yaml:5", "workers[0].size_class", "frontier, mid, small, specialist"});
  // Error rates that cannot add up.
  expect_catalog_error(
      replace(kMinimal, "    skill:", "    availability: {server_error_rate: 0.6, rate_limit_rate: 0.6}\n    skill:"),
      {"cat.yaml:8", "workers[0].availability.rate_limit_rate", "<= 1"});
  // Snapshot date format, missing workers, duplicate ids.
  expect_catalog_error(replace(kMinimal, "2026-07-24", "last week"), {"cat.yaml:1", "pricing_snapshot", "YYYY-MM-DD"});
  expect_catalog_error("pricing_snapshot: 2026-07-24\n", {"key 'workers'", "required key is missing"});
  const std::string worker = std::string(kMinimal).substr(std::string(kMinimal).find("  - id"));
  expect_catalog_error(std::string(kMinimal) + worker, {"cat.yaml:9", "duplicate worker id 'small'"});
}

TEST(Catalog, LoadFileNamesThePath) {
  const std::string path = testing::temp_dir() + "/c.yaml";
  write_file_atomic(path, replace(kMinimal, "price_in_per_mtok: 0.1", "price_in_per_mtok: -1"));
  try {
    load_catalog(path);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_catalog(path + ".absent"), Error);
}

TEST(ShippedCatalog, EmbeddedCopyIsIdenticalToConfigsFile) {
  const std::string file = read_file(std::string(CONDUCTOR_SOURCE_DIR) + "/configs/catalog.yaml");
  EXPECT_EQ(default_catalog_yaml(), file)
      << "the build embeds configs/catalog.yaml: re-run cmake";
  const Catalog c = default_catalog();
  const Catalog f = load_catalog(std::string(CONDUCTOR_SOURCE_DIR) + "/configs/catalog.yaml");
  ASSERT_EQ(c.workers.size(), f.workers.size());
  EXPECT_GE(c.workers.size(), 8u);
  EXPECT_EQ(c.pricing_snapshot, "2026-07-24");
  int frontier = 0, small = 0, specialist = 0;
  for (const auto& w : c.workers) {
    EXPECT_FALSE(w.pricing_key.empty()) << w.id;
    EXPECT_FALSE(w.latency.fitted_from.empty()) << w.id;
    frontier += w.size_class == "frontier";
    small += w.size_class == "small";
    specialist += w.size_class == "specialist";
  }
  EXPECT_GE(frontier, 2);
  EXPECT_GE(small, 2);
  EXPECT_GE(specialist, 1);
}

TEST(ShippedCatalog, PricesEqualTheLiteLLMSnapshot) {
  CONDUCTOR_REQUIRE_SHARED_DATA(data);
  const Catalog c = default_catalog();
  const PriceTable table =
      PriceTable::load(data + "/pricing/model_prices_and_context_window." + c.pricing_snapshot + ".json");
  EXPECT_GT(table.size(), 2000u);
  for (const auto& w : c.workers) {
    const ModelPrice* p = table.find(w.pricing_key);
    ASSERT_NE(p, nullptr) << w.id << ": key " << w.pricing_key;
    EXPECT_NEAR(w.price_in_per_mtok, p->input_per_mtok, 1e-9) << w.id;
    EXPECT_NEAR(w.price_out_per_mtok, p->output_per_mtok, 1e-9) << w.id;
    if (p->max_input_tokens > 0) EXPECT_EQ(w.context_window, p->max_input_tokens) << w.id;
    else EXPECT_EQ(w.context_window, 0) << w.id << ": the table gives no context window";
  }
  EXPECT_TRUE(check_catalog_prices(c, table).empty());
  // The check catches a changed price.
  Catalog changed = c;
  changed.workers[0].price_out_per_mtok += 1.0;
  const auto bad = check_catalog_prices(changed, table);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].worker, c.workers[0].id);
  EXPECT_NE(bad[0].message.find("price_out_per_mtok"), std::string::npos);
}

TEST(ShippedCatalog, LatencyBlocksEqualTheLlmperfFits) {
  CONDUCTOR_REQUIRE_SHARED_DATA(data);
  for (const auto& w : default_catalog().workers) {
    const LatencyFit f = fit_llmperf_file(data + "/llmperf/individual/" + w.latency.fitted_from);
    // The catalog records the fit to 4 decimals.
    EXPECT_NEAR(w.latency.ttft_mu, f.ttft.mu, 5.1e-5) << w.id;
    EXPECT_NEAR(w.latency.ttft_sigma, f.ttft.sigma, 5.1e-5) << w.id;
    EXPECT_NEAR(w.latency.throughput_mu, f.throughput.mu, 5.1e-5) << w.id;
    EXPECT_NEAR(w.latency.throughput_sigma, f.throughput.sigma, 5.1e-5) << w.id;
  }
}

TEST(PriceTable, HandWrittenTableAndErrors) {
  const std::string dir = testing::temp_dir();
  write_file_atomic(dir + "/p.json", R"({
    "sample_spec": {"input_cost_per_token": "doc"},
    "last_updated": "2026-07-24",
    "m1": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05, "max_input_tokens": 1000,
           "litellm_provider": "openai", "mode": "chat"},
    "m2": {"output_cost_per_token": null}
  })");
  const PriceTable t = PriceTable::load(dir + "/p.json");
  EXPECT_EQ(t.size(), 2u);
  ASSERT_NE(t.find("m1"), nullptr);
  EXPECT_NEAR(t.find("m1")->input_per_mtok, 1.25, 1e-12);
  EXPECT_NEAR(t.find("m1")->output_per_mtok, 10.0, 1e-12);
  EXPECT_EQ(t.find("m1")->max_input_tokens, 1000);
  EXPECT_EQ(t.find("m1")->provider, "openai");
  EXPECT_TRUE(std::isnan(t.find("m2")->input_per_mtok));
  EXPECT_EQ(t.find("sample_spec"), nullptr);
  EXPECT_EQ(t.find("m3"), nullptr);
  EXPECT_EQ(t.metadata_keys(), std::vector<std::string>{"last_updated"});

  write_file_atomic(dir + "/bad.json", R"({"m1": {"input_cost_per_token": "cheap"}})");
  try {
    PriceTable::load(dir + "/bad.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("key 'm1': field 'input_cost_per_token'"), std::string::npos) << e.what();
  }
  write_file_atomic(dir + "/list.json", "[1, 2]");
  EXPECT_THROW(PriceTable::load(dir + "/list.json"), Error);
}

}  // namespace
}  // namespace conductor
