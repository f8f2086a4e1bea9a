// Tests of the embedded default world (traces/synth.h): determinism, independence from iteration
// order and catalog composition, the trace conventions of failed calls, and the generator's documented
// statistics (docs/synthetic-world.md) at N = 20,000 with fixed seeds.
#include "traces/synth.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <cmath>
#include <map>

#include "core/error.h"
#include "traces/store.h"
#include "core/atomic_file.h"
#include "tests/test_util.h"

namespace conductor {
namespace {

SynthConfig config(int64_t n, uint64_t seed) {
  SynthConfig c;
  c.queries = n;
  c.seed = seed;
  return c;
}

void expect_same(const TraceSet& a, const TraceSet& b) {
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.model_name, b.model_name);
  EXPECT_EQ(a.model_provider, b.model_provider);
  EXPECT_EQ(a.price_in_per_mtok, b.price_in_per_mtok);
  EXPECT_EQ(a.price_out_per_mtok, b.price_out_per_mtok);
  EXPECT_EQ(a.query_id, b.query_id);
  EXPECT_EQ(a.query_task, b.query_task);
  EXPECT_EQ(a.query_text, b.query_text);
  EXPECT_EQ(a.input_tokens, b.input_tokens);
  EXPECT_EQ(a.split, b.split);
  EXPECT_EQ(a.quality, b.quality);  // the generator never writes NaN, so == is exact equality
  EXPECT_EQ(a.cost_usd, b.cost_usd);
  EXPECT_EQ(a.latency_s, b.latency_s);
  EXPECT_EQ(a.output_tokens, b.output_tokens);
  EXPECT_EQ(a.answer, b.answer);
  EXPECT_EQ(a.error, b.error);
}

TEST(Synth, SameSeedSameWorldOtherSeedDifferent) {
  const Catalog cat = default_catalog();
  const TraceSet a = synthesize(config(500, 7), cat);
  const TraceSet b = synthesize(config(500, 7), cat);
  expect_same(a, b);
  a.validate("synth");
  const TraceSet c = synthesize(config(500, 8), cat);
  EXPECT_NE(a.quality, c.quality);
  EXPECT_NE(a.query_text, c.query_text);
  EXPECT_NE(a.latency_s, c.latency_s);
  EXPECT_NE(a.split, c.split);
}

TEST(Synth, FileRoundTripHasIdenticalContents) {
  const std::string dir = testing::temp_dir();
  const Catalog cat = default_catalog();
  write_traces(synthesize(config(300, 3), cat), dir + "/a.h5");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // no timestamps may leak into the file
  write_traces(synthesize(config(300, 3), cat), dir + "/b.h5");
  write_traces(synthesize(config(300, 4), cat), dir + "/c.h5");
  const TraceSet a = read_traces(dir + "/a.h5");
  expect_same(a, read_traces(dir + "/b.h5"));
  expect_same(a, synthesize(config(300, 3), cat));
  EXPECT_NE(a.quality, read_traces(dir + "/c.h5").quality);
  // Same seed: byte-identical files; other seed: different bytes.
  EXPECT_EQ(read_file(dir + "/a.h5"), read_file(dir + "/b.h5"));
  EXPECT_NE(read_file(dir + "/a.h5"), read_file(dir + "/c.h5"));
}

TEST(Synth, OutcomesDoNotDependOnOtherWorkersOrOnLaterQueries) {
  const Catalog full = default_catalog();
  Catalog sub = full;
  sub.workers.erase(sub.workers.begin());  // drop the first worker
  std::swap(sub.workers[0], sub.workers[3]);  // and reorder the rest
  const TraceSet a = synthesize(config(400, 11), full);
  const TraceSet b = synthesize(config(400, 11), sub);
  const TraceSet prefix = synthesize(config(150, 11), full);
  EXPECT_EQ(a.query_text, b.query_text);
  for (std::size_t mb = 0; mb < b.n_models(); ++mb) {
    const int ma = a.model_index(b.model_name[mb]);
    ASSERT_GE(ma, 0);
    for (std::size_t q = 0; q < a.n_queries(); ++q) {
      ASSERT_EQ(a.quality[a.at(q, ma)], b.quality[b.at(q, mb)]) << q;
      ASSERT_EQ(a.latency_s[a.at(q, ma)], b.latency_s[b.at(q, mb)]) << q;
      ASSERT_EQ(a.answer[a.at(q, ma)], b.answer[b.at(q, mb)]) << q;
    }
  }
  // The first 150 queries of a 400-query world are the 150-query world.
  for (std::size_t q = 0; q < prefix.n_queries(); ++q) {
    ASSERT_EQ(prefix.query_text[q], a.query_text[q]);
    ASSERT_EQ(prefix.split[q], a.split[q]);
    for (std::size_t m = 0; m < a.n_models(); ++m) {
      ASSERT_EQ(prefix.quality[prefix.at(q, m)], a.quality[a.at(q, m)]);
      ASSERT_EQ(prefix.error[prefix.at(q, m)], a.error[a.at(q, m)]);
    }
  }
}

TEST(Synth, ConventionsOfAnswersAndFailedCalls) {
  const Catalog cat = default_catalog();
  SynthLatents lat;
  const TraceSet t = synthesize(config(3000, 5), cat, &lat);
  ASSERT_EQ(t.n_models(), cat.workers.size());
  EXPECT_EQ(t.query_id[12], "synth-0000012");
  int failed = 0;
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    const DomainSpec& spec = domain_spec(static_cast<Domain>(lat.domain[q]));
    EXPECT_EQ(t.query_task[q], spec.name);
    EXPECT_GT(t.input_tokens[q], 0);
    for (std::size_t m = 0; m < t.n_models(); ++m) {
      const std::size_t k = t.at(q, m);
      if (t.error[k] != kOk) {
        ++failed;
        EXPECT_EQ(t.quality[k], 0.0f);
        EXPECT_EQ(t.answer[k], -1);
        EXPECT_EQ(t.cost_usd[k], 0.0);
        EXPECT_EQ(t.output_tokens[k], 0);
        EXPECT_GT(t.latency_s[k], 0.0f);
        if (t.error[k] == kTimeout) {
          EXPECT_FLOAT_EQ(t.latency_s[k], cat.workers[m].availability.timeout_s);
        }
        continue;
      }
      EXPECT_GT(t.output_tokens[k], 0);
      EXPECT_NEAR(t.cost_usd[k], cat.workers[m].cost_usd(t.input_tokens[q], t.output_tokens[k]), 1e-15);
      if (spec.options > 0) {
        ASSERT_GE(t.answer[k], 0);
        ASSERT_LT(t.answer[k], spec.options);
        EXPECT_EQ(t.quality[k], t.answer[k] == lat.correct[q] ? 1.0f : 0.0f);
      } else {
        EXPECT_EQ(t.answer[k], -1);
      }
    }
  }
  EXPECT_GT(failed, 0);
}

// A one-domain, error-free world for checks against closed forms.
Catalog probe_catalog(double skill, double discrimination, AvailabilityModel av = {}) {
  WorkerSpec w;
  w.id = "probe";
  w.provider = "test";
  w.price_in_per_mtok = 2.0;
  w.price_out_per_mtok = 8.0;
  w.latency.ttft_mu = std::log(0.5);
  w.latency.ttft_sigma = 0.2;
  w.latency.throughput_mu = std::log(100.0);
  w.latency.throughput_sigma = 0.1;
  w.availability = av;
  w.availability.timeout_s = 1e6;
  w.skill.skill.fill(skill);
  w.skill.discrimination = discrimination;
  w.skill.verbosity = 1.5;
  Catalog c;
  c.pricing_snapshot = "2026-07-24";
  c.name = "probe";
  c.workers.push_back(w);
  return c;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(SynthStatistics, MultipleChoiceAccuracyFollowsTheItemResponseModel) {
  // Not knowing, a worker picks the attractive distractor with probability alpha ~ U(0.2, 0.8), else
  // guesses uniformly among n options: E[accuracy | b] = p + (1 - p) * E[1 - alpha] / n, E[1 - alpha] = 0.5.
  for (Domain d : {Domain::kKnowledge, Domain::kMath}) {
    SynthConfig cfg = config(20000, 21);
    cfg.domain_mix.fill(0.0);
    cfg.domain_mix[static_cast<int>(d)] = 1.0;
    SynthLatents lat;
    const TraceSet t = synthesize(cfg, probe_catalog(0.5, 1.2), &lat);
    const int n = domain_spec(d).options;
    double expected = 0, got = 0;
    for (std::size_t q = 0; q < t.n_queries(); ++q) {
      const double p = sigmoid(1.2 * (0.5 - lat.difficulty[q]));
      expected += p + (1 - p) * 0.5 / n;
      got += t.quality[q];
    }
    expected /= t.n_queries();
    got /= t.n_queries();
    EXPECT_NEAR(got, expected, 0.015) << domain_name(d);  // sd of the mean ~0.0035
  }
}

TEST(SynthStatistics, ErrorRatesMatchTheAvailabilityModel) {
  AvailabilityModel av;
  av.rate_limit_rate = 0.05;
  av.server_error_rate = 0.02;
  const TraceSet t = synthesize(config(20000, 31), probe_catalog(0.0, 1.0, av));
  std::map<int, int> n;
  for (uint8_t e : t.error) ++n[e];
  // sd of a share at N = 20,000: sqrt(0.05 * 0.95 / 20000) = 0.0015; tolerances are 4 sd.
  EXPECT_NEAR(n[kRateLimited] / 20000.0, 0.05, 0.006);
  EXPECT_NEAR(n[kServerError] / 20000.0, 0.02, 0.004);
  EXPECT_EQ(n[kTimeout], 0);

  // Outages: 2 per hour of up time, 6 minutes each: down 0.2 / 1.2 = 1/6 of the time. The default
  // 0.2 queries/s spreads 20,000 queries over 27.8 h, about 46 outages.
  AvailabilityModel out;
  out.outages_per_hour = 2.0;
  out.outage_mean_minutes = 6.0;
  EXPECT_NEAR(out.outage_fraction(), 1.0 / 6.0, 1e-12);
  const TraceSet o = synthesize(config(20000, 32), probe_catalog(0.0, 1.0, out));
  int down = 0, runs = 0;
  for (std::size_t q = 0; q < o.n_queries(); ++q) {
    down += o.error[q] == kServerError;
    runs += o.error[q] == kServerError && (q == 0 || o.error[q - 1] != kServerError);
  }
  EXPECT_NEAR(down / 20000.0, 1.0 / 6.0, 0.05);
  EXPECT_GT(runs, 20);  // outages come in runs of consecutive queries (6 min = 72 queries)
  EXPECT_LT(runs, 90);

  // Timeouts: with timeout_s at the median latency about half the calls time out.
  Catalog slow = probe_catalog(0.0, 1.0);
  const TraceSet base = synthesize(config(4000, 33), slow);
  std::vector<double> lats(base.latency_s.begin(), base.latency_s.end());
  std::sort(lats.begin(), lats.end());
  slow.workers[0].availability.timeout_s = lats[lats.size() / 2];
  const TraceSet to = synthesize(config(4000, 33), slow);
  int timeouts = 0;
  for (uint8_t e : to.error) timeouts += e == kTimeout;
  EXPECT_NEAR(timeouts / 4000.0, 0.5, 0.01);
}

TEST(SynthStatistics, CostIsPriceTimesTokensAndTokensFollowTheLengthModel) {
  // Output tokens ~ Lognormal(log(base_d * verbosity) + 0.15 b, 0.4), b ~ Normal(mean_d, 1):
  // E = base_d * verbosity * exp(0.15 mean_d + (0.15^2 + 0.4^2) / 2).
  SynthConfig cfg = config(20000, 41);
  cfg.domain_mix = {0, 0, 0, 1, 0};  // reasoning
  const Catalog cat = probe_catalog(0.0, 1.0);
  const TraceSet t = synthesize(cfg, cat);
  const DomainSpec& spec = domain_spec(Domain::kReasoning);
  double out = 0, in = 0, cost = 0;
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    out += t.output_tokens[q];
    in += t.input_tokens[q];
    cost += t.cost_usd[q];
  }
  const double n = t.n_queries();
  const double expected_out =
      spec.base_output_tokens * 1.5 * std::exp(0.15 * spec.difficulty_mean + (0.15 * 0.15 + 0.4 * 0.4) / 2);
  EXPECT_NEAR(out / n / expected_out, 1.0, 0.02);
  // Input tokens ~ Lognormal(log base_in + 0.2 b, 0.35).
  const double expected_in =
      spec.base_input_tokens * std::exp(0.2 * spec.difficulty_mean + (0.2 * 0.2 + 0.35 * 0.35) / 2);
  EXPECT_NEAR(in / n / expected_in, 1.0, 0.02);
  // Mean cost = price_in x mean input tokens + price_out x mean output tokens (all calls succeed).
  EXPECT_NEAR(cost / n, (2.0 * in / n + 8.0 * out / n) * 1e-6, 1e-12);
}

TEST(SynthStatistics, ShippedWorldHasTheDocumentedGaps) {
  const Catalog cat = default_catalog();
  SynthLatents lat;
  const TraceSet t = synthesize(config(20000, 1), cat, &lat);
  const auto stats = synth_statistics(t, lat);
  auto get = [&](const std::string& id) -> const WorkerStats& {
    for (const auto& s : stats)
      if (s.worker == id) return s;
    throw Error("no worker " + id);
  };
  const WorkerStats& gpt5 = get("gpt-5");
  const WorkerStats& small = get("llama-3.1-8b-groq");
  const WorkerStats& coder = get("codestral-2508");
  // Frontier models are far better on hard reasoning ...
  EXPECT_GT(gpt5.accuracy_hard_reasoning, small.accuracy_hard_reasoning + 0.35);
  for (const auto& s : stats) {
    const auto& w = cat.workers[cat.index_of(s.worker)];
    if (w.size_class != "frontier") {
      EXPECT_LT(s.accuracy_hard_reasoning, gpt5.accuracy_hard_reasoning) << s.worker;
    }
  }
  // ... while the cheapest model is fine on easy queries, at a small fraction of the cost.
  EXPECT_GE(small.accuracy_easy, 0.75);
  EXPECT_GT(gpt5.accuracy_easy - small.accuracy_easy, 0.0);
  EXPECT_LT(gpt5.accuracy_easy - small.accuracy_easy, 0.25);
  EXPECT_LT(small.mean_cost_usd * 50, gpt5.mean_cost_usd);
  // The code specialist: much better at code than at anything else, and better at code than the mid
  // and small general models.
  EXPECT_GT(coder.accuracy[static_cast<int>(Domain::kCode)], coder.accuracy[static_cast<int>(Domain::kMath)] + 0.3);
  EXPECT_GT(coder.accuracy[static_cast<int>(Domain::kCode)],
            get("llama-3.3-70b-together").accuracy[static_cast<int>(Domain::kCode)] + 0.1);
  EXPECT_GT(coder.accuracy[static_cast<int>(Domain::kCode)],
            get("gemini-2.5-flash").accuracy[static_cast<int>(Domain::kCode)]);
  // Error rates stay near the catalog's (per-call rates plus outage share; a few outages per run).
  for (const auto& s : stats) {
    const auto& a = cat.workers[cat.index_of(s.worker)].availability;
    EXPECT_GT(s.error_rate, 0.5 * (a.rate_limit_rate + a.server_error_rate)) << s.worker;
    EXPECT_LT(s.error_rate, a.rate_limit_rate + a.server_error_rate + 0.1) << s.worker;
  }
  // Splits: 20% test, 10% validation.
  const double n = t.n_queries();
  EXPECT_NEAR(t.split_indices(Split::kTest).size() / n, 0.2, 0.012);
  EXPECT_NEAR(t.split_indices(Split::kValidation).size() / n, 0.1, 0.009);
}

TEST(SynthStatistics, AgreementCarriesInformationAndTextCarriesDifficulty) {
  const Catalog cat = default_catalog();
  SynthLatents lat;
  const TraceSet t = synthesize(config(5000, 2), cat, &lat);
  // Pairwise: when two workers give the same multiple-choice answer it is correct far more often
  // than a single answer is.
  double agree = 0, agree_correct = 0, single = 0, single_correct = 0;
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    if (lat.correct[q] < 0) continue;
    for (std::size_t m = 0; m < t.n_models(); ++m) {
      const int32_t a = t.answer[t.at(q, m)];
      if (a < 0) continue;
      single += 1;
      single_correct += a == lat.correct[q];
      for (std::size_t m2 = m + 1; m2 < t.n_models(); ++m2) {
        if (t.answer[t.at(q, m2)] != a) continue;
        agree += 1;
        agree_correct += a == lat.correct[q];
      }
    }
  }
  EXPECT_GT(agree_correct / agree, single_correct / single + 0.05);
  // Hard-cue words appear mostly on hard queries.
  int hard = 0, hard_cued = 0;
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    if (difficulty_level(lat.difficulty[q]) != Level::kHard) continue;
    ++hard;
    for (const char* cue : {"Challenging:", "Prove rigorously:", "Multi-step problem:", "Olympiad-level:",
                            "Carefully justify each step:"})
      if (t.query_text[q].rfind(cue, 0) == 0) ++hard_cued;
  }
  EXPECT_GT(hard_cued, 0.75 * hard);  // fidelity 0.75 plus a third of the random draws
}

TEST(SynthConfig, ParsesAndRejectsBadValues) {
  ConfigDoc doc = ConfigDoc::load_string("queries: 10\nseed: 3\ndomain_mix: {code: 2}\n", "s.yaml");
  const SynthConfig c = SynthConfig::parse(doc.root());
  EXPECT_EQ(c.queries, 10);
  EXPECT_EQ(c.seed, 3u);
  EXPECT_DOUBLE_EQ(c.domain_mix[1], 2.0);
  EXPECT_DOUBLE_EQ(c.domain_mix[0], 0.25);
  auto expect_err = [](const std::string& text, const std::string& needle) {
    try {
      SynthConfig::parse(ConfigDoc::load_string(text, "s.yaml").root());
      FAIL() << needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_err("queries: 0\n", "s.yaml:1: key 'queries'");
  expect_err("test_fraction: 0.7\nvalidation_fraction: 0.5\n", "s.yaml:2: key 'validation_fraction'");
  expect_err("domain_mix: {poetry: 1}\n", "unknown key 'domain_mix.poetry'");
  expect_err("domain_mix: {math: 0, code: 0, knowledge: 0, reasoning: 0, writing: 0}\n", "must not all be 0");
  expect_err("queries_per_minute: 3\n", "unknown key 'queries_per_minute'");
  SynthConfig bad = config(10, 1);
  bad.test_fraction = 0.9;
  bad.validation_fraction = 0.2;
  EXPECT_THROW(synthesize(bad, default_catalog()), Error);
  Catalog empty;
  EXPECT_THROW(synthesize(config(10, 1), empty), Error);
}

}  // namespace
}  // namespace conductor
