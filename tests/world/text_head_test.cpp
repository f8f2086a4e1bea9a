// The text head (world/text_head.h): TF-IDF values by hand, a many-subject world with a known
// answer, cross-fitting, exact serialization, determinism and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/config.h"
#include "core/error.h"
#include "core/random.h"
#include "world/featurizer.h"
#include "world/predictors.h"
#include "traces/trace_set.h"

namespace conductor {
namespace {

TraceSet make_traces(const std::vector<std::string>& texts, const std::vector<Split>& split, int n_models) {
  TraceSet t;
  t.source = "text-head-test";
  for (int m = 0; m < n_models; ++m) {
    t.model_name.push_back("m" + std::to_string(m));
    t.model_provider.push_back("p");
  }
  for (std::size_t q = 0; q < texts.size(); ++q) {
    t.query_id.push_back("q" + std::to_string(q));
    t.query_task.push_back("task");
    t.query_text.push_back(texts[q]);
    t.input_tokens.push_back(10);
    t.split.push_back(static_cast<uint8_t>(split[q]));
  }
  t.allocate_outcomes();
  for (std::size_t q = 0; q < texts.size(); ++q)
    for (int m = 0; m < n_models; ++m) t.quality[t.at(q, static_cast<std::size_t>(m))] = 0.5f;
  return t;
}

TextHeadConfig words_only() {
  TextHeadConfig c;
  c.enabled = true;
  c.word_ngram_max = 1;
  c.char_ngram_min = 0;
  c.char_ngram_max = 0;
  c.folds = 2;
  return c;
}

TEST(TextHead, TfIdfValuesByHand) {
  // Train documents "a b", "a", "c": n = 3, df(a) = 2, df(b) = 1, df(c) = 1, so
  // idf(a) = ln(4/3) + 1 = 1.287682, idf(b) = ln(4/2) + 1 = 1.693147.
  // "A a b zzz" -> tf(a) = 1 + ln 2, tf(b) = 1; zzz was never seen in training and is dropped;
  // the row is L2-normalized: a = 2.180235 / 2.760466 = 0.789807, b = 1.693147 / 2.760466 = 0.613356.
  TraceSet t = make_traces({"a b", "a", "c", "held out"}, {Split::kTrain, Split::kTrain, Split::kTrain, Split::kTest}, 1);
  const TextHead h = TextHead::fit(words_only(), t, {"task"}, nullptr, nullptr);
  SparseRow r = h.vectorize("A a b zzz", -1);
  ASSERT_EQ(r.size(), 2u);
  std::vector<float> v = {r[0].second, r[1].second};
  std::sort(v.begin(), v.end());
  EXPECT_NEAR(v[0], 0.613356, 1e-6);
  EXPECT_NEAR(v[1], 0.789807, 1e-6);
  EXPECT_TRUE(h.vectorize("zzz yyy", -1).empty());
  // The task adds one column of value 1 after the text columns.
  const SparseRow with_task = h.vectorize("c", 0);
  ASSERT_EQ(with_task.size(), 2u);
  EXPECT_FLOAT_EQ(with_task[0].second, 1.0f);  // a lone term normalizes to 1
  EXPECT_FLOAT_EQ(with_task[1].second, 1.0f);
  EXPECT_GT(with_task[1].first, with_task[0].first);
}

// Many subjects, two workers: m0 answers the even subjects well (quality 1 with probability 0.9),
// m1 the odd ones; each query is three words of its subject among five common fillers. The best
// possible AUC of either worker is 0.9 * 0.9 + 0.5 * (2 * 0.9 * 0.1) = 0.90.
TraceSet subject_world(int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::string> texts;
  std::vector<Split> split;
  std::vector<int> subject;
  for (int i = 0; i < n; ++i) {
    const int s = static_cast<int>(rng.below(40));
    std::string text;
    for (int w = 0; w < 8; ++w) {
      if (w % 3 == 0) text += "subj" + std::to_string(s) + "term" + std::to_string(rng.below(5)) + " ";
      else text += "filler" + std::to_string(rng.below(30)) + " ";
    }
    texts.push_back(text);
    split.push_back(i < n * 2 / 3 ? Split::kTrain : Split::kTest);
    subject.push_back(s);
  }
  TraceSet t = make_traces(texts, split, 2);
  for (int i = 0; i < n; ++i)
    for (int m = 0; m < 2; ++m) {
      const bool good = (subject[static_cast<std::size_t>(i)] % 2) == m;
      t.quality[t.at(static_cast<std::size_t>(i), static_cast<std::size_t>(m))] = rng.bernoulli(good ? 0.9 : 0.1) ? 1.f : 0.f;
    }
  return t;
}

TEST(TextHead, LearnsWhichWorkerKnowsWhichSubject) {
  const TraceSet t = subject_world(1500, 5);
  FeaturizerConfig fc;
  fc.text.enabled = true;
  const QueryFeaturizer f = QueryFeaturizer::for_traces(fc, t);
  ASSERT_NE(f.text_head(), nullptr);
  ASSERT_EQ(f.dim(), 64 + 1 + 1 + 2);
  const std::vector<float> x = f.featurize_all(t);
  for (int m = 0; m < 2; ++m) {
    std::vector<double> score;
    std::vector<uint8_t> label;
    for (std::size_t q : t.split_indices(Split::kTest)) {
      score.push_back(x[q * static_cast<std::size_t>(f.dim()) + 66 + static_cast<std::size_t>(m)]);
      label.push_back(t.quality[t.at(q, static_cast<std::size_t>(m))] > 0.5f);
    }
    const double auc = roc_auc(score, label);
    EXPECT_GT(auc, 0.85) << "worker m" << m;
    EXPECT_LT(auc, 0.95) << "worker m" << m;  // above the Bayes AUC of 0.90 would be a leak
  }
}

TEST(TextHead, TrainingQueriesGetOutOfFoldPredictionsAndOthersTheFullHead) {
  const TraceSet t = subject_world(600, 7);
  FeaturizerConfig fc;
  fc.text.enabled = true;
  const QueryFeaturizer f = QueryFeaturizer::for_traces(fc, t);
  const std::vector<float> x = f.featurize_all(t);
  const std::size_t D = static_cast<std::size_t>(f.dim());
  int train_differs = 0, n_train = 0;
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    const std::vector<float> full = f.featurize(t.query_text[q], t.query_task[q], t.input_tokens[q]);
    const std::vector<float> row(x.begin() + static_cast<std::ptrdiff_t>(q * D), x.begin() + static_cast<std::ptrdiff_t>((q + 1) * D));
    // Everything but the head's block is the same in both.
    for (std::size_t j = 0; j + 2 < D; ++j) ASSERT_EQ(row[j], full[j]) << "query " << q << " feature " << j;
    if (t.split[q] == static_cast<uint8_t>(Split::kTrain)) {
      ++n_train;
      train_differs += row[D - 1] != full[D - 1];
    } else {
      EXPECT_EQ(row[D - 2], full[D - 2]);
      EXPECT_EQ(row[D - 1], full[D - 1]);
    }
  }
  EXPECT_EQ(train_differs, n_train);
  // A featurizer rebuilt from its JSON (an export) has no out-of-fold table: the full head for all.
  const QueryFeaturizer g = QueryFeaturizer::from_json(f.to_json());
  const std::vector<float> y = g.featurize_all(t);
  for (std::size_t q = 0; q < t.n_queries(); ++q)
    EXPECT_EQ(std::vector<float>(y.begin() + static_cast<std::ptrdiff_t>(q * D), y.begin() + static_cast<std::ptrdiff_t>((q + 1) * D)),
              f.featurize(t.query_text[q], t.query_task[q], t.input_tokens[q]));
}

TEST(TextHead, JsonRoundTripIsExactAndFittingIsDeterministic) {
  const TraceSet t = subject_world(400, 9);
  FeaturizerConfig fc;
  fc.text.enabled = true;
  fc.text.l2_grid = {0.5, 4.0};  // a grid: chosen per model by out-of-fold log loss
  json report;
  const QueryFeaturizer f = QueryFeaturizer::for_traces(fc, t, &report);
  ASSERT_EQ(report["models"].size(), 2u);
  for (const json& m : report["models"]) {
    EXPECT_TRUE(m["l2"].get<double>() == 0.5 || m["l2"].get<double>() == 4.0);
    EXPECT_GT(m["oof_log_loss"].get<double>(), 0.0);
  }
  const json j = f.to_json();
  // Fitting twice gives the same bytes (and the featurizer's head, from the process cache, is that fit).
  const std::string fresh = TextHead::fit(fc.text, t, f.tasks(), nullptr, nullptr).to_json().dump();
  EXPECT_EQ(fresh, TextHead::fit(fc.text, t, f.tasks(), nullptr, nullptr).to_json().dump());
  EXPECT_EQ(j["text"].dump(), fresh);
  EXPECT_EQ(j.dump(), QueryFeaturizer::for_traces(fc, t).to_json().dump());
  // Other labels are another head (the cache is keyed by the qualities too).
  TraceSet t2 = t;
  for (float& q : t2.quality) q = 1.0f - q;
  EXPECT_NE(QueryFeaturizer::for_traces(fc, t2).to_json()["text"].dump(), j["text"].dump());
  const QueryFeaturizer g = QueryFeaturizer::from_json(j);
  EXPECT_EQ(g.dim(), f.dim());
  EXPECT_EQ(g.config().text.l2_grid, fc.text.l2_grid);
  for (const char* text : {"subj3term1 filler2 filler9", "", "unseen words only", "subj8term0 \xe4\xbd\xa0\xe5\xa5\xbd"})
    EXPECT_EQ(g.featurize(text, "task", 5), f.featurize(text, "task", 5)) << text;
  // The report form leaves the weights out.
  EXPECT_FALSE(f.summary_json().contains("text"));
  EXPECT_TRUE(f.summary_json().contains("text_config"));
}

TEST(TextHead, BadInputIsAClearError) {
  TraceSet t = subject_world(60, 3);
  FeaturizerConfig fc;
  fc.text.enabled = true;
  // Traces without texts: the head is left out (with a warning), not the run.
  TraceSet no_text = t;
  no_text.query_text.clear();
  const QueryFeaturizer plain = QueryFeaturizer::for_traces(fc, no_text);
  EXPECT_EQ(plain.text_head(), nullptr);
  EXPECT_FALSE(plain.config().text.enabled);
  EXPECT_EQ(plain.dim(), 64 + 1 + 1);
  try {
    TextHead::fit(fc.text, no_text, {"task"}, nullptr, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/queries/text"), std::string::npos) << e.what();
  }
  TraceSet no_train = t;
  for (auto& s : no_train.split) s = static_cast<uint8_t>(Split::kTest);
  EXPECT_THROW(QueryFeaturizer::for_traces(fc, no_train), Error);

  auto parse = [](const std::string& yaml) {
    ConfigDoc doc = ConfigDoc::load_string(yaml, "f.yaml");
    return FeaturizerConfig::parse(doc.root());
  };
  EXPECT_TRUE(parse("text: {enabled: true, char_ngrams: [2, 4], l2: [1, 3]}").text.enabled);
  for (const std::string bad : {"text: {char_ngrams: [5, 3]}", "text: {l2: [0]}", "text: {l2: []}",
                                "text: {enabled: true, word_ngram_max: 0, char_ngrams: [0, 0]}", "text: {bukets: 10}"}) {
    try {
      parse(bad);
      FAIL() << "accepted: " << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("f.yaml"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("text."), std::string::npos) << e.what();
    }
  }

  const QueryFeaturizer f = QueryFeaturizer::for_traces(fc, t);
  json j = f.to_json();
  j["text"]["weights"] = j["text"]["weights"].get<std::string>().substr(4);
  try {
    QueryFeaturizer::from_json(j);
    FAIL() << "truncated weights accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text.weights"), std::string::npos) << e.what();
  }
  j = f.to_json();
  j["text"]["idf"] = "!!!!";
  EXPECT_THROW(QueryFeaturizer::from_json(j), Error);
}

}  // namespace
}  // namespace conductor
