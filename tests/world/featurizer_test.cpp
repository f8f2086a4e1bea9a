// Query featurizer: FNV-1a reference vectors, determinism, layout and normalization.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/envs/conductor_fixtures.h"
#include "world/featurizer.h"

namespace conductor {
namespace {

// Reference values of 64-bit FNV-1a from the FNV test suite (isthe.com/chongo/tech/comp/fnv).
TEST(Fnv1a64, ReferenceVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(Featurizer, LayoutTaskOneHotAndLength) {
  FeaturizerConfig c;
  c.hash_dim = 32;
  QueryFeaturizer f(c, {"mbpp", "arc", "mbpp"});
  ASSERT_EQ(f.tasks(), (std::vector<std::string>{"arc", "mbpp"}));
  ASSERT_EQ(f.dim(), 32 + 2 + 1);
  const std::vector<float> v = f.featurize("Write a Python function", "mbpp", 99);
  EXPECT_EQ(v[32], 0.f);
  EXPECT_EQ(v[33], 1.f);
  EXPECT_FLOAT_EQ(v[34], static_cast<float>(std::log1p(99.0) / 10.0));  // log1p(99)/10 = 0.460517
  double sq = 0;
  for (int i = 0; i < 32; ++i) sq += double(v[i]) * v[i];
  EXPECT_NEAR(sq, 1.0, 1e-6);  // hashed block is L2-normalized
  const std::vector<float> u = f.featurize("", "unknown-task", -1);
  for (float x : u) EXPECT_EQ(x, 0.f);  // no text, unknown task, no length: all zero
}

// The task vocabulary of a trace file is its training split's: a task that appears only in test
// (a held-out task family) reads as unknown (all-zero one-hot), as a new task does in serving, and
// does not get a column whose policy weights training never moved. A file without a training split
// keeps every task.
TEST(Featurizer, TaskVocabularyIsTheTrainingSplits) {
  TraceSet t = testing::tiny_world();
  int held_out = 0;
  for (std::size_t q = 0; q < t.n_queries(); ++q)
    if (t.split[q] == 2 && q % 4 == 2) {
      t.query_task[q] = "unseen";
      ++held_out;
    }
  ASSERT_GT(held_out, 0);
  const QueryFeaturizer f = QueryFeaturizer::for_traces(FeaturizerConfig{}, t);
  EXPECT_EQ(f.tasks(), (std::vector<std::string>{"math", "trivia"}));
  const std::vector<float> x = f.featurize_all(t);
  const int T0 = FeaturizerConfig{}.hash_dim;
  for (std::size_t q = 0; q < t.n_queries(); ++q) {
    const float* row = x.data() + q * static_cast<std::size_t>(f.dim());
    const float ones = row[T0] + row[T0 + 1];
    EXPECT_EQ(ones, t.query_task[q] == "unseen" ? 0.f : 1.f) << q;
  }
  for (auto& s : t.split) s = 2;  // no training split: every task
  EXPECT_EQ(QueryFeaturizer::for_traces(FeaturizerConfig{}, t).tasks(),
            (std::vector<std::string>{"math", "trivia", "unseen"}));
}

TEST(Featurizer, DeterministicCaseInsensitiveAndTextSensitive) {
  QueryFeaturizer f(FeaturizerConfig{}, {"t"});
  const auto a = f.featurize("Which planet is the largest?", "t", 10);
  EXPECT_EQ(a, f.featurize("Which planet is the largest?", "t", 10));
  EXPECT_EQ(a, f.featurize("which PLANET is the largest", "t", 10));  // case and punctuation
  EXPECT_NE(a, f.featurize("Which planet is the smallest?", "t", 10));
  EXPECT_NE(a, f.featurize("largest the is planet Which", "t", 10));  // bigrams see order
}

// Golden values: the exact floats must be the same on every machine (integer hashing only).
TEST(Featurizer, GoldenBuckets) {
  FeaturizerConfig c;
  c.hash_dim = 8;
  c.ngram_max = 1;
  QueryFeaturizer f(c, {});
  const auto v = f.featurize("a a b", "", -1);
  // Unigram buckets: bucket(h) = h % 8 with h the FNV-1a of (order byte 1, 8 bytes of the word's
  // FNV-1a, 0x1F); computed here independently of the featurizer's loop.
  auto bucket_and_sign = [](std::string_view w) {
    uint64_t wh = fnv1a64(w);
    std::string bytes;
    bytes.push_back(1);
    for (int b = 0; b < 8; ++b) bytes.push_back(static_cast<char>((wh >> (8 * b)) & 0xFF));
    bytes.push_back(0x1F);
    const uint64_t h = fnv1a64(bytes);
    return std::make_pair(static_cast<int>(h % 8), (h >> 63) ? -1.0 : 1.0);
  };
  const auto [ba, sa] = bucket_and_sign("a");
  const auto [bb, sb] = bucket_and_sign("b");
  std::vector<double> expected(8, 0.0);
  expected[ba] += sa * 2;
  expected[bb] += sb * 1;
  double sq = 0;
  for (double& e : expected) {
    e = e >= 0 ? std::log1p(e) : -std::log1p(-e);
    sq += e * e;
  }
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(v[i], static_cast<float>(expected[i] / std::sqrt(sq))) << i;
}

TEST(Featurizer, JsonRoundTrip) {
  FeaturizerConfig c;
  c.hash_dim = 16;
  c.ngram_max = 3;
  QueryFeaturizer f(c, {"x", "y"});
  const QueryFeaturizer g = QueryFeaturizer::from_json(f.to_json());
  EXPECT_EQ(g.dim(), f.dim());
  EXPECT_EQ(g.featurize("hello big world", "y", 3), f.featurize("hello big world", "y", 3));
}

}  // namespace
}  // namespace conductor
