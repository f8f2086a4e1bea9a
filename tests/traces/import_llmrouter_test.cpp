// LLMRouter importer: a hand-made copy of the format (costs computed by hand), errors with file,
// line and field, and the real data counts (skipped without ../shared/data).
#include "traces/import_llmrouter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "tests/test_util.h"
#include "traces/info.h"

namespace conductor {
namespace {

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const char* kPrices = R"({
  "small-7b": {"size": "7B", "input_price": 0.2, "output_price": 0.4, "model": "org/small-7b", "service": "NVIDIA"},
  "big-70b": {"size": "70B", "input_price": 0.9, "output_price": 0.9, "model": "org/big-70b", "service": "NVIDIA"}
})";
const char* kTrain = R"([
  {
    "question": "What is 2+2?",
    "scores": {"small-7b": 1.0, "big-70b": 1.0},
    "cluster_id": 3
  },
  {
    "question": "Name the capital of France.",
    "scores": {"small-7b": 0.0, "big-70b": null}
  }
])";
const char* kTest = R"([{"question": "Solve x+1=3 for x, then explain", "scores": {"small-7b": 0.5, "big-70b": 1.0}}])";
const char* kMapTrain =
    R"({"task_name": "gsm8k", "query": "What is 2+2?", "ground_truth": "4", "metric": "GSM8K", "choices": "", "task_id": "1"})"
    "\n"
    R"({"task_name": "natural_qa", "query": "Name the capital of France.", "ground_truth": "Paris, France", "metric": "f1_score"})"
    "\n"
    R"({"task_name": "mmlu", "query": "Solve x+1=3 for x, then explain", "ground_truth": "A"})"
    "\n";
const char* kMapTest = R"({"task_name": "math", "query": "Solve x+1=3 for x, then explain", "ground_truth": "x = 2"})"
                       "\n";

std::string make_dir(const std::string& train = kTrain, const std::string& map_train = kMapTrain) {
  const std::string dir = testing::temp_dir();
  write(dir, "default_llm.json", kPrices);
  write(dir, "train.json", train);
  write(dir, "test.json", kTest);
  write(dir, "default_query_train.jsonl", map_train);
  write(dir, "default_query_test.jsonl", kMapTest);
  return dir;
}

std::string import_error(const std::vector<std::string>& inputs) {
  ImportReport report;
  try {
    import_llmrouter(inputs, ImportOptions{}, report);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LlmRouterImport, ConvertsScoresTasksAndCosts) {
  const std::string dir = make_dir();
  ImportReport report;
  const TraceSet t = import_llmrouter({dir}, ImportOptions{}, report);
  t.validate();
  EXPECT_EQ(report.records, 3u);
  ASSERT_EQ(t.n_models(), 2u);
  EXPECT_EQ(t.model_name, (std::vector<std::string>{"big-70b", "small-7b"}));  // sorted by name
  EXPECT_EQ(t.model_provider[0], "nvidia");
  EXPECT_EQ(t.price_in_per_mtok[1], 0.2);
  EXPECT_EQ(t.price_out_per_mtok[1], 0.4);
  // Files in name order: test.json, then train.json.
  EXPECT_EQ(t.query_id, (std::vector<std::string>{"test.0", "train.0", "train.1"}));
  EXPECT_EQ(t.split, (std::vector<uint8_t>{2, 0, 0}));
  // The same question is listed as "mmlu" in the train map and "math" in the test map: the map of
  // the query's own split wins.
  EXPECT_EQ(t.query_task, (std::vector<std::string>{"math", "gsm8k", "natural_qa"}));
  EXPECT_EQ(t.query_text[1], "What is 2+2?");
  // Tokens: "What is 2+2?" 12 chars -> 3 in; "4" -> 1 out.
  EXPECT_EQ(t.input_tokens[1], 3);
  EXPECT_EQ(t.output_tokens[t.at(1, 1)], 1);
  EXPECT_DOUBLE_EQ(t.cost_usd[t.at(1, 1)], (3 * 0.2 + 1 * 0.4) / 1e6);
  EXPECT_DOUBLE_EQ(t.cost_usd[t.at(1, 0)], (3 * 0.9 + 1 * 0.9) / 1e6);
  // "Solve x+1=3 for x, then explain" 31 chars -> 8 in; "x = 2" -> 2 out.
  EXPECT_EQ(t.input_tokens[0], 8);
  EXPECT_DOUBLE_EQ(t.cost_usd[t.at(0, 1)], (8 * 0.2 + 2 * 0.4) / 1e6);
  EXPECT_EQ(t.quality[t.at(0, 1)], 0.5f);
  // null score: missing everywhere, never 0.
  EXPECT_TRUE(std::isnan(t.quality[t.at(2, 0)]));
  EXPECT_TRUE(std::isnan(t.cost_usd[t.at(2, 0)]));
  EXPECT_EQ(t.error[t.at(2, 0)], kErrorMissing);
  EXPECT_EQ(t.quality[t.at(2, 1)], 0.0f);
  EXPECT_EQ(t.error[t.at(2, 1)], kOk);
  EXPECT_TRUE(std::isnan(t.latency_s[t.at(2, 1)]));
  EXPECT_EQ(t.answer[t.at(2, 1)], -1);
}

TEST(LlmRouterImport, ErrorsNameFileLineAndField) {
  {
    const std::string bad = R"([
  {"question": "What is 2+2?", "scores": {"small-7b": 1.0}},
  {"question": "Name the capital of France.",
   "scores": {"small-7b": "good"}}
])";
    const std::string dir = make_dir(bad);
    EXPECT_EQ(import_error({dir}), dir + "/train.json:3: entry 1: field 'scores.small-7b': expected a number in [0, 1] "
                                         "or null, got string \"good\"");
  }
  {
    const std::string dir = make_dir(R"([{"question": "What is 2+2?", "scores": {"small-7b": 1.5}}])");
    EXPECT_EQ(import_error({dir}),
              dir + "/train.json:1: entry 0: field 'scores.small-7b': expected a number in [0, 1] or null, got number 1.5");
  }
  {
    const std::string dir = make_dir("[\n  {\"question\": 7, \"scores\": {}}\n]");
    EXPECT_EQ(import_error({dir}), dir + "/train.json:2: entry 0: field 'question': expected a string, got number 7");
  }
  {
    const std::string dir = make_dir("[\n  {\"question\": \"What is 2+2?\"}\n]");
    EXPECT_EQ(import_error({dir}),
              dir + "/train.json:2: entry 0: field 'scores': missing (expected an object of model -> score)");
  }
  {
    const std::string dir = make_dir("[\n  {\"question\": \"Unknown question\", \"scores\": {}}\n]");
    EXPECT_EQ(import_error({dir}), dir + "/train.json:2: entry 0: field 'question': not found in any task map "
                                         "(default_query_*.jsonl)");
  }
  {
    // JSON syntax error: line and column.
    const std::string dir = make_dir("[\n  {\"question\": \"x\",\n   \"scores\": {\"a\": 1.0,}}\n]");
    const std::string e = import_error({dir});
    EXPECT_EQ(e.rfind(dir + "/train.json:3:", 0), 0u) << e;
    EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;
  }
  {
    const std::string dir = make_dir(kTrain, std::string(kMapTrain) + "{\"query\": \"q\", \"task_name\": 5}\n");
    EXPECT_EQ(import_error({dir}),
              dir + "/default_query_train.jsonl:4: field 'task_name': expected a string, got number 5");
  }
  {
    const std::string dir = make_dir();
    write(dir, "default_llm.json", R"({"small-7b": {"input_price": "cheap", "output_price": 0.1}})");
    EXPECT_EQ(import_error({dir}), dir + "/default_llm.json: model 'small-7b': field 'input_price': expected a "
                                         "non-negative number (USD per 1M tokens), got string \"cheap\"");
  }
  {
    const std::string dir = make_dir();
    EXPECT_EQ(import_error({dir + "/train.json", dir + "/default_query_train.jsonl"}),
              "no price table (default_llm.json) among the inputs: costs need it");
  }
}

TEST(LlmRouterImport, SkipBadCountsEntries) {
  const std::string bad = R"([
  {"question": "What is 2+2?", "scores": {"small-7b": 1.0}},
  {"question": "Name the capital of France.", "scores": {"small-7b": -1}},
  {"question": "Not in the map", "scores": {"small-7b": 1.0}}
])";
  const std::string dir = make_dir(bad);
  ImportOptions skip;
  skip.skip_bad = true;
  ImportReport report;
  const TraceSet t = import_llmrouter({dir}, skip, report);
  EXPECT_EQ(t.n_queries(), 2u);  // test.0 and train.0
  EXPECT_EQ(report.records, 4u);
  EXPECT_EQ(report.skipped, 2u);
  ASSERT_EQ(report.skipped_examples.size(), 2u);
  EXPECT_NE(report.skipped_examples[0].find("train.json:3: entry 1"), std::string::npos);
  EXPECT_NE(report.skipped_examples[1].find("train.json:4: entry 2"), std::string::npos);
}

// Every prefix of a valid score file either imports or fails with a conductor::Error.
TEST(LlmRouterImport, TruncatedFilesFailCleanly) {
  const std::string full = kTrain;
  const std::string dir = make_dir();
  for (std::size_t n = 0; n < full.size(); n += 3) {
    write(dir, "train.json", full.substr(0, n));
    ImportReport report;
    try {
      const TraceSet t = import_llmrouter({dir}, ImportOptions{}, report);
      t.validate();
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "prefix " << n << ": " << e.what();
    }
  }
}

// Counts from the files themselves (Python: len(json.load(...)), the score keys, default_llm.json).
TEST(LlmRouterImport, RealDataCounts) {
  CONDUCTOR_REQUIRE_SHARED_DATA(data);
  ImportReport report;
  const TraceSet t = import_llmrouter({data + "/llmrouter"}, ImportOptions{}, report);
  t.validate();
  EXPECT_EQ(report.skipped, 0u);
  EXPECT_EQ(t.n_queries(), 6108u);
  EXPECT_EQ(t.split_indices(Split::kTrain).size(), 5608u);
  EXPECT_EQ(t.split_indices(Split::kTest).size(), 500u);
  EXPECT_EQ(t.n_models(), 9u);
  const int nemo = t.model_index("llama-3.3-nemotron-super-49b-v1");
  ASSERT_GE(nemo, 0);
  EXPECT_EQ(t.price_in_per_mtok[nemo], 0.9);
  EXPECT_EQ(t.model_provider[nemo], "nvidia");
  const TraceSummary s = summarize_traces(t, std::nullopt);
  EXPECT_EQ(s.tasks.size(), 14u);
  for (const auto& m : s.per_model) {
    EXPECT_EQ(m.missing, 0.0) << m.name;
    EXPECT_GT(m.cost_usd, 0.0) << m.name;
  }
}

}  // namespace
}  // namespace conductor
