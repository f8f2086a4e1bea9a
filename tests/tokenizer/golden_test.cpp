// Golden test against the real Qwen3 tokenizer.json (../shared/data/qwen3-tokenizer/): every text of
// golden/sample.jsonl must give exactly the ids in golden/expected.jsonl, and each of the 2,000 texts
// of golden/generated.jsonl (random Unicode, code, long whitespace runs, every added token inside
// text) its ids there; both made by HF `tokenizers` 0.23.3 (golden/make_golden.py; commands in
// docs/tokenizer.md). Skips, naming where the file is looked for, when it is absent.
#include <gtest/gtest.h>

#include "tests/test_util.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/unicode.h"

namespace conductor {
namespace {

using Ids = std::vector<int32_t>;

std::vector<Ids> expected_ids() {
  std::vector<Ids> out;
  for (const json& row : testing::read_jsonl(testing::tokenizer_test_dir() + "/golden/expected.jsonl"))
    out.push_back(row.at("ids").get<Ids>());
  return out;
}

// The generated texts and their ids (golden/generated.jsonl).
std::pair<std::vector<std::string>, std::vector<Ids>> generated() {
  std::pair<std::vector<std::string>, std::vector<Ids>> out;
  for (const json& row : testing::read_jsonl(testing::tokenizer_test_dir() + "/golden/generated.jsonl")) {
    out.first.push_back(row.at("text").get<std::string>());
    out.second.push_back(row.at("ids").get<Ids>());
  }
  return out;
}

void expect_ids(const BpeTokenizer& tok, const std::vector<std::string>& texts, const std::vector<Ids>& want,
                bool skip_u180e, const char* file) {
  ASSERT_EQ(texts.size(), want.size()) << file << ": texts and ids differ in length";
  ASSERT_GE(texts.size(), 300u) << file;
  int failures = 0, compared = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (skip_u180e && texts[i].find("\xE1\xA0\x8E") != std::string::npos) continue;
    ++compared;
    const Ids got = tok.encode(texts[i]);
    if (got != want[i] && ++failures <= 10)
      ADD_FAILURE() << file << " line " << i + 1 << " " << json(texts[i]).dump() << "\n  expected " << json(want[i]).dump()
                    << "\n  got      " << json(got).dump();
  }
  EXPECT_EQ(failures, 0) << "of " << compared << " texts of " << file;
}

void expect_golden(const BpeTokenizer& tok, bool skip_u180e) {
  expect_ids(tok, testing::golden_texts(), expected_ids(), skip_u180e, "sample.jsonl");
}

class QwenGolden : public ::testing::Test {
 protected:
  static const BpeTokenizer* qwen(const std::string& path) {
    static const BpeTokenizer tok = BpeTokenizer::load(path);
    return &tok;
  }
};

TEST_F(QwenGolden, EveryTextGivesTheReferenceIds) {
  CONDUCTOR_REQUIRE_QWEN_TOKENIZER(path);
  const BpeTokenizer& tok = *qwen(path);
  EXPECT_EQ(tok.vocab_size(), 151669);
  EXPECT_EQ(tok.split_engine(), "qwen2-scanner");
  EXPECT_EQ(tok.token_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok.token_id("<|im_end|>"), 151645);
  expect_golden(tok, false);
}

TEST_F(QwenGolden, GeneratedTextsGiveTheIdsOfHfTokenizers) {
  CONDUCTOR_REQUIRE_QWEN_TOKENIZER(path);
  const auto [texts, want] = generated();
  ASSERT_EQ(texts.size(), 2000u);
  expect_ids(*qwen(path), texts, want, false, "generated.jsonl");
  BpeOptions options;
  options.force_pcre2 = true;
  expect_ids(BpeTokenizer::load(path, options), texts, want, true, "generated.jsonl (pcre2)");
}

TEST_F(QwenGolden, Pcre2EngineGivesTheSameIds) {
  CONDUCTOR_REQUIRE_QWEN_TOKENIZER(path);
  BpeOptions options;
  options.force_pcre2 = true;
  const BpeTokenizer tok = BpeTokenizer::load(path, options);
  expect_golden(tok, /*skip_u180e=*/true);  // PCRE2's \s includes U+180E (docs/tokenizer.md)
}

TEST_F(QwenGolden, DecodeOfEncodeIsTheNfcText) {
  CONDUCTOR_REQUIRE_QWEN_TOKENIZER(path);
  const BpeTokenizer& tok = *qwen(path);
  for (const std::string& text : testing::golden_texts()) {
    if (text.find("<|") != std::string::npos || text.find('<') != std::string::npos) continue;  // added tokens
    EXPECT_EQ(tok.decode(tok.encode(text)), unicode::nfc(text)) << json(text).dump();
  }
  EXPECT_EQ(tok.decode(tok.encode("<|im_start|>user\nhi<|im_end|>"), true), "user\nhi");
}

TEST_F(QwenGolden, ActionTokensSurviveWriteAndReload) {
  CONDUCTOR_REQUIRE_QWEN_TOKENIZER(path);
  BpeTokenizer tok = BpeTokenizer::load(path);
  const Ids ids = tok.add_special_tokens({"<call:gpt-4o>", "<call:claude-3-5-sonnet>", "<finish:vote>"});
  EXPECT_EQ(ids, (Ids{151669, 151670, 151671}));
  const std::string out = testing::temp_dir() + "/tokenizer.json";
  tok.write_json(out);
  const BpeTokenizer back = BpeTokenizer::load(out);
  EXPECT_EQ(back.vocab_size(), 151672);
  EXPECT_EQ(back.encode("<|im_start|>assistant\n<call:gpt-4o>"), (Ids{151644, 77091, 198, 151669}));
  const std::vector<std::string> texts = testing::golden_texts();
  const std::vector<Ids> want = expected_ids();
  for (size_t i = 0; i < texts.size(); i += 7) EXPECT_EQ(back.encode(texts[i]), want[i]) << json(texts[i]).dump();
}

}  // namespace
}  // namespace conductor
