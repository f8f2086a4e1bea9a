// RouterBench importer: hand-made CSVs (every conversion rule and error), then the real six CSVs
// (skipped without ../shared/data) against figures computed independently with Python's csv module.
#include "traces/import_routerbench.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tests/test_util.h"
#include "traces/info.h"
#include "traces/pricing.h"
#include "traces/store.h"
#include "traces/tokens.h"

namespace conductor {
namespace {

const char* kHeader =
    ",sample_id,prompt,eval_name,gpt-4-1106-preview,meta/llama-2-70b-chat,"
    "gpt-4-1106-preview|model_response,meta/llama-2-70b-chat|model_response,"
    "gpt-4-1106-preview|total_cost,meta/llama-2-70b-chat|total_cost,oracle_model_to_route_to\n";
// Cells hold Python list literals, so "\n" inside them is a backslash and an 'n', as in RouterBench.
const char* kTrainRows =
    R"(0,arc.1,"['Question?\nA) x\nB) y']",arc-challenge,1.0,0.0,"['B']","['A\n']",0.0052,0.0004,gpt-4-1106-preview)"
    "\n"
    R"(1,wino.1,"[""It's A or B""]",winogrande,0.0,1.0,"['I do not know']","['(A) because']",0.005,0.0003,x)"
    "\n";
const char* kTestRows =
    R"(7,mbpp.1,"['Write code']",mbpp,,1.0,"['def f(): pass']","['A']",0.01,0.0002,meta/llama-2-70b-chat)"
    "\n";

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string import_error(const std::vector<std::string>& inputs) {
  ImportReport report;
  try {
    import_routerbench(inputs, ImportOptions{}, report);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Tokens, CeilOfCodePointsOverFour) {
  EXPECT_EQ(estimate_tokens(""), 0);
  EXPECT_EQ(estimate_tokens("a"), 1);
  EXPECT_EQ(estimate_tokens("abcd"), 1);
  EXPECT_EQ(estimate_tokens("abcde"), 2);
  // Code points, not bytes: "\xC3\xA9" is one code point (e with acute accent).
  EXPECT_EQ(utf8_code_points("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), 5u);
  EXPECT_EQ(estimate_tokens("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), 2);
  EXPECT_EQ(estimate_tokens("\xF0\x9F\x98\x80"), 1);  // one 4-byte emoji
}

TEST(RouterBenchParsing, PythonStringListLiterals) {
  EXPECT_EQ(parse_python_string_list("['A']"), (std::vector<std::string>{"A"}));
  EXPECT_EQ(parse_python_string_list(R"(['a\nb', "it's"])"), (std::vector<std::string>{"a\nb", "it's"}));
  EXPECT_EQ(parse_python_string_list(R"(['\'q\' \\ \t \x41 \u00e9'])"),
            (std::vector<std::string>{"'q' \\ \t A \xC3\xA9"}));
  EXPECT_EQ(parse_python_string_list("[]"), std::vector<std::string>{});
  EXPECT_THROW(parse_python_string_list("A"), Error);
  EXPECT_THROW(parse_python_string_list("['open"), Error);
  EXPECT_THROW(parse_python_string_list("['a'] tail"), Error);
  EXPECT_THROW(parse_python_string_list("['a' 'b']"), Error);
}

TEST(RouterBenchParsing, ChoiceLetterRule) {
  // Forms seen in the RouterBench responses (docs/importers.md lists the rule).
  EXPECT_EQ(parse_choice_letter("A"), 0);
  EXPECT_EQ(parse_choice_letter("B\n"), 1);
  EXPECT_EQ(parse_choice_letter("C)"), 2);
  EXPECT_EQ(parse_choice_letter("D ("), 3);
  EXPECT_EQ(parse_choice_letter("E."), 4);
  EXPECT_EQ(parse_choice_letter("A:"), 0);
  EXPECT_EQ(parse_choice_letter("(B) because"), 1);
  EXPECT_EQ(parse_choice_letter("  C  "), 2);
  EXPECT_EQ(parse_choice_letter("A chart"), -1);  // an article, not an answer
  EXPECT_EQ(parse_choice_letter("I do"), -1);
  EXPECT_EQ(parse_choice_letter("Rachel"), -1);
  EXPECT_EQ(parse_choice_letter("G"), -1);  // outside A-E
  EXPECT_EQ(parse_choice_letter("13"), -1);
  EXPECT_EQ(parse_choice_letter(""), -1);
  EXPECT_TRUE(is_multiple_choice_task("arc-challenge"));
  EXPECT_TRUE(is_multiple_choice_task("winogrande"));
  EXPECT_FALSE(is_multiple_choice_task("mbpp"));
}

TEST(RouterBenchImport, ConvertsEveryColumn) {
  const std::string dir = testing::temp_dir();
  write(dir, "tiny_train.csv", std::string(kHeader) + kTrainRows);
  write(dir, "tiny_test.csv", std::string(kHeader) + kTestRows);
  ImportReport report;
  const TraceSet t = import_routerbench({dir}, ImportOptions{}, report);
  t.validate();
  EXPECT_EQ(report.records, 3u);
  EXPECT_EQ(report.skipped, 0u);
  ASSERT_EQ(t.n_models(), 2u);
  EXPECT_EQ(t.model_name[0], "gpt-4-1106-preview");
  EXPECT_EQ(t.model_provider[0], "openai");
  EXPECT_EQ(t.model_provider[1], "meta");
  EXPECT_TRUE(std::isnan(t.price_in_per_mtok[0]));  // prices come from --pricing, not the CSV
  // Files are read in name order: tiny_test.csv, then tiny_train.csv.
  ASSERT_EQ(t.n_queries(), 3u);
  EXPECT_EQ(t.query_id, (std::vector<std::string>{"mbpp.1", "arc.1", "wino.1"}));
  EXPECT_EQ(t.split, (std::vector<uint8_t>{2, 0, 0}));
  EXPECT_EQ(t.query_task[1], "arc-challenge");
  EXPECT_EQ(t.query_text[1], "Question?\nA) x\nB) y");
  EXPECT_EQ(t.query_text[2], "It's A or B");
  EXPECT_EQ(t.input_tokens[1], 5);  // 19 code points -> ceil(19 / 4)
  EXPECT_EQ(t.input_tokens[0], 3);  // "Write code": 10 -> 3

  // mbpp.1: an empty quality cell is missing, never 0; code answers have no class.
  EXPECT_TRUE(std::isnan(t.quality[t.at(0, 0)]));
  EXPECT_EQ(t.quality[t.at(0, 1)], 1.0f);
  EXPECT_EQ(t.answer[t.at(0, 0)], -1);
  EXPECT_EQ(t.answer[t.at(0, 1)], -1);  // "A" is not parsed for mbpp
  EXPECT_EQ(t.error[t.at(0, 0)], kOk);  // a response was logged
  EXPECT_EQ(t.output_tokens[t.at(0, 0)], 4);  // "def f(): pass": 13 -> 4
  EXPECT_DOUBLE_EQ(t.cost_usd[t.at(0, 0)], 0.01);

  // arc.1: letters parsed, costs as logged, latency not in RouterBench.
  EXPECT_EQ(t.quality[t.at(1, 0)], 1.0f);
  EXPECT_EQ(t.quality[t.at(1, 1)], 0.0f);
  EXPECT_EQ(t.answer[t.at(1, 0)], 1);
  EXPECT_EQ(t.answer[t.at(1, 1)], 0);
  EXPECT_DOUBLE_EQ(t.cost_usd[t.at(1, 0)], 0.0052);
  EXPECT_DOUBLE_EQ(t.cost_usd[t.at(1, 1)], 0.0004);
  EXPECT_EQ(t.output_tokens[t.at(1, 1)], 1);
  EXPECT_TRUE(std::isnan(t.latency_s[t.at(1, 0)]));
  // wino.1: an unparseable answer is -1, "(A) because" is A.
  EXPECT_EQ(t.answer[t.at(2, 0)], -1);
  EXPECT_EQ(t.answer[t.at(2, 1)], 0);
}

TEST(RouterBenchImport, DuplicateSampleIdsGetTheIndexColumn) {
  const std::string dir = testing::temp_dir();
  write(dir, "a_train.csv", std::string(kHeader) + kTrainRows);
  write(dir, "b_test.csv", std::string(kHeader) + "9" + std::string(kTrainRows).substr(1, std::string(kTrainRows).find('\n')));
  ImportReport report;
  const TraceSet t = import_routerbench({dir}, ImportOptions{}, report);
  EXPECT_EQ(t.query_id, (std::vector<std::string>{"arc.1#0", "wino.1", "arc.1#9"}));
  ASSERT_EQ(report.notes.size(), 1u);
}

TEST(RouterBenchImport, MissingColumnsNameFileAndColumn) {
  const std::string dir = testing::temp_dir();
  std::string header = kHeader;
  header.replace(header.find(",meta/llama-2-70b-chat|total_cost"), std::string(",meta/llama-2-70b-chat|total_cost").size(), "");
  const auto p = write(dir, "x_train.csv", header);
  EXPECT_NE(import_error({p}).find(p + ":1: missing column 'meta/llama-2-70b-chat|total_cost' (the header has 10 columns"),
            std::string::npos)
      << import_error({p});

  const auto q = write(dir, "y_train.csv", "sample_id,eval_name,m1,m1|model_response,m1|total_cost\n");
  EXPECT_NE(import_error({q}).find(q + ":1: missing column 'prompt'"), std::string::npos) << import_error({q});

  const auto r = write(dir, "z_train.csv", "sample_id,prompt,eval_name,m1|model_response,m1|total_cost\n");
  EXPECT_EQ(import_error({r}), r + ":1: missing column 'm1' (the quality column of 'm1|model_response')");

  // Files with different model sets.
  const std::string dir2 = dir + "/two";
  std::filesystem::create_directories(dir2);
  write(dir2, "a_train.csv", std::string(kHeader) + kTrainRows);
  const auto b = write(dir2, "b_test.csv", "sample_id,prompt,eval_name,m1,m1|model_response,m1|total_cost\n");
  EXPECT_NE(import_error({dir2}).find(b + ":1: missing column 'gpt-4-1106-preview'"), std::string::npos)
      << import_error({dir2});
}

TEST(RouterBenchImport, BadRowsNameFileLineAndColumn) {
  const std::string dir = testing::temp_dir();
  auto error_for_row = [&](const std::string& name, const std::string& row) {
    const auto p = write(dir, name, std::string(kHeader) + kTrainRows + row + "\n");
    return std::make_pair(p, import_error({p}));
  };
  {
    auto [p, e] = error_for_row("a_train.csv", "2,s,\"['q']\",arc-challenge,1.0,0.0");
    EXPECT_EQ(e, p + ":4: row has 6 fields, expected 11 (as in the header)");
  }
  {
    auto [p, e] = error_for_row("b_train.csv", "2,s,\"['q']\",arc-challenge,high,0.0,\"['A']\",\"['A']\",0.1,0.1,x");
    EXPECT_EQ(e, p + ":4: column 'gpt-4-1106-preview': expected a quality in [0, 1] or an empty cell, got \"high\"");
  }
  {
    auto [p, e] = error_for_row("c_train.csv", "2,s,\"['q']\",arc-challenge,1.0,1.5,\"['A']\",\"['A']\",0.1,0.1,x");
    EXPECT_EQ(e, p + ":4: column 'meta/llama-2-70b-chat': expected a quality in [0, 1] or an empty cell, got \"1.5\"");
  }
  {
    auto [p, e] = error_for_row("d_train.csv", "2,s,\"['q']\",arc-challenge,1.0,1.0,\"['A']\",\"['A']\",-0.1,0.1,x");
    EXPECT_EQ(e, p + ":4: column 'gpt-4-1106-preview|total_cost': expected a non-negative cost in USD or an empty cell, got \"-0.1\"");
  }
  {
    auto [p, e] = error_for_row("e_train.csv", "2,s,question text,arc-challenge,1.0,1.0,\"['A']\",\"['A']\",0.1,0.1,x");
    EXPECT_EQ(e, p + ":4: column 'prompt': expected a Python list literal of strings such as ['text'], got \"question text\"");
  }
  {
    auto [p, e] = error_for_row("f_train.csv", "2,s,\"['q']\",arc-challenge,1.0,1.0,\"['A'\",\"['A']\",0.1,0.1,x");
    EXPECT_EQ(e, p + ":4: column 'gpt-4-1106-preview|model_response': expected ',' or ']' at character 5 of the list literal");
  }
  {
    auto [p, e] = error_for_row("g_train.csv", "2,,\"['q']\",arc-challenge,1.0,1.0,\"['A']\",\"['A']\",0.1,0.1,x");
    EXPECT_EQ(e, p + ":4: column 'sample_id': expected a non-empty sample id, got \"\"");
  }
  {
    // A CSV syntax error (an unclosed quote) names the line where the field opened.
    auto [p, e] = error_for_row("h_train.csv", "2,s,\"['q']\",arc-challenge,1.0,1.0,\"['A'],0.1");
    EXPECT_EQ(e, p + ":4: column 7: quoted field is never closed (runs to the end of the file)");
  }
  const auto nosplit = write(dir, "routerbench.csv", std::string(kHeader) + kTrainRows);
  EXPECT_EQ(import_error({nosplit}), nosplit + ": cannot tell the split from the file name (expected a name ending in "
                                               "_train.csv, _validation.csv or _test.csv)");
  EXPECT_EQ(import_error({dir + "/absent"}), "input '" + dir + "/absent': no such file or directory");
}

TEST(RouterBenchImport, SkipBadSkipsAndCounts) {
  const std::string dir = testing::temp_dir();
  const auto p = write(dir, "s_train.csv",
                       std::string(kHeader) + kTrainRows + "2,s,\"['q']\",arc-challenge,oops,1.0,\"['A']\",\"['A']\",0.1,0.1,x\n" +
                           "3,s2,\"['q']\",arc-challenge,1.0\n");
  ImportOptions skip;
  skip.skip_bad = true;
  ImportReport report;
  const TraceSet t = import_routerbench({p}, skip, report);
  EXPECT_EQ(t.n_queries(), 2u);
  EXPECT_EQ(report.records, 4u);
  EXPECT_EQ(report.skipped, 2u);
  ASSERT_EQ(report.skipped_examples.size(), 2u);
  EXPECT_NE(report.skipped_examples[0].find(p + ":4: column 'gpt-4-1106-preview'"), std::string::npos);
  EXPECT_NE(report.skipped_examples[1].find(p + ":5: row has 5 fields"), std::string::npos);
  // Without --skip-bad the same file fails at line 4.
  EXPECT_NE(import_error({p}).find(p + ":4:"), std::string::npos);
}

// Every prefix of a valid file (a truncated download) either imports or fails with a
// conductor::Error; never another exception type, a crash or a partial result.
TEST(RouterBenchImport, TruncatedFilesFailCleanly) {
  const std::string dir = testing::temp_dir();
  const std::string full = std::string(kHeader) + kTrainRows;
  for (std::size_t n = 0; n < full.size(); n += 7) {
    const auto p = write(dir, "t_train.csv", full.substr(0, n));
    ImportReport report;
    try {
      const TraceSet t = import_routerbench({p}, ImportOptions{}, report);
      t.validate();
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "prefix " << n << ": " << e.what();
    }
  }
}

// Expected figures: an independent Python computation over the same CSVs (csv.DictReader, files in
// name order, empty cells skipped; prompt/response text = the list elements joined by "\n";
// tokens = ceil(len(text) / 4); letter = re.match(r'\(?([A-E])(?:$|[).:,]|\s+\()', text.strip())).
TEST(RouterBenchImport, RealDataMatchesIndependentComputation) {
  CONDUCTOR_REQUIRE_SHARED_DATA(data);
  ImportReport report;
  TraceSet t = import_routerbench({data + "/routerbench"}, ImportOptions{}, report);
  EXPECT_EQ(t.n_queries(), 3178u);
  EXPECT_EQ(t.n_models(), 11u);
  EXPECT_EQ(report.skipped, 0u);
  EXPECT_EQ(t.split_indices(Split::kTrain).size(), 2225u);
  EXPECT_EQ(t.split_indices(Split::kTest).size(), 953u);
  const auto unpriced = apply_prices(t, PriceTable::load(data + "/pricing/model_prices_and_context_window.2025-02-06.json"));
  EXPECT_EQ(unpriced.size(), 9u);  // only the two OpenAI models are priced under their exact names
  const int gpt4 = t.model_index("gpt-4-1106-preview");
  ASSERT_GE(gpt4, 0);
  EXPECT_EQ(t.price_in_per_mtok[gpt4], 10.0);
  EXPECT_EQ(t.price_out_per_mtok[gpt4], 30.0);
  EXPECT_EQ(t.model_provider[gpt4], "openai");
  t.validate();

  const TraceSummary s = summarize_traces(t, Split::kTest);
  const ModelSummary& m = s.per_model[gpt4];
  EXPECT_EQ(s.queries, 953u);
  EXPECT_EQ(m.logged, 947u);
  EXPECT_NEAR(m.quality, 0.8796198521647307, 1e-12);
  EXPECT_NEAR(m.cost_usd, 0.005033001049317936, 1e-15);
  EXPECT_NEAR(m.missing, 6.0 / 953.0, 1e-12);
  EXPECT_TRUE(std::isnan(m.latency_s));
  const int gpt35 = t.model_index("gpt-3.5-turbo-1106");
  EXPECT_NEAR(s.per_model[gpt35].quality, 0.7497371188222923, 1e-12);
  EXPECT_NEAR(s.per_model[gpt35].cost_usd, 0.00042158027282266654, 1e-15);

  int64_t answers[6] = {0, 0, 0, 0, 0, 0};  // -1, A..E
  int64_t out_tokens = 0, in_tokens = 0;
  for (std::size_t q : t.split_indices(Split::kTest)) {
    ++answers[t.answer[t.at(q, gpt4)] + 1];
    out_tokens += t.output_tokens[t.at(q, gpt4)];
    in_tokens += t.input_tokens[q];
  }
  EXPECT_EQ(answers[0], 128);  // the 128 MBPP rows; every ARC/Winogrande answer of gpt-4 parses
  EXPECT_EQ(answers[1], 373);
  EXPECT_EQ(answers[2], 252);
  EXPECT_EQ(answers[3], 106);
  EXPECT_EQ(answers[4], 94);
  EXPECT_EQ(out_tokens, 40096);
  EXPECT_EQ(in_tokens, 362084);

  // Through the store and back.
  const std::string path = testing::temp_dir() + "/rb.h5";
  write_traces(t, path);
  const TraceSet back = read_traces(path);
  EXPECT_EQ(back.n_queries(), 3178u);
  EXPECT_EQ(back.query_id, t.query_id);
  EXPECT_NEAR(summarize_traces(back, Split::kTest).per_model[gpt4].cost_usd, 0.005033001049317936, 1e-15);
}

}  // namespace
}  // namespace conductor
