// WordPiece tokenizer (tokenizer/wordpiece.h): golden ids against HF tokenizers as
// sentence-transformers runs it (500 varied strings; the reduced-vocabulary fixture in every run,
// all-MiniLM-L6-v2's real vocabulary when fetched), the BasicTokenizer rules one by one, and the
// errors for malformed files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/atomic_file.h"
#include "tests/test_util.h"
#include "tests/tokenizer/wordpiece_test_util.h"
#include "tokenizer/wordpiece.h"

namespace conductor {
namespace {

using Ids = std::vector<int32_t>;
using testing::expect_error;

void expect_golden(const WordPieceTokenizer& tok, int64_t max_length, const std::vector<Ids>& want, std::size_t n,
                   const std::string& what) {
  const auto& texts = testing::encoder_strings();
  ASSERT_EQ(texts.size(), 500u);
  ASSERT_GE(want.size(), n);
  int failures = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Ids got = tok.encode_for_model(texts[i], max_length);
    if (got != want[i] && ++failures <= 10)
      ADD_FAILURE() << what << ": string " << i << " " << json(texts[i]).dump() << "\n  expected " << json(want[i]).dump()
                    << "\n  got      " << json(got).dump();
  }
  EXPECT_EQ(failures, 0) << "of " << n << " strings (" << what << ")";
}

TEST(WordPieceGolden, TinyVocabularyTokenizerJsonMatchesSentenceTransformers) {
  const auto tok = WordPieceTokenizer::load_dir(testing::tiny_encoder_dir());
  EXPECT_EQ(tok.vocab_size(), 1000);
  expect_golden(tok, 48, testing::read_ids("tests/llm/encoder/tiny_ids.jsonl"), 500, "bert_tiny tokenizer.json");
}

TEST(WordPieceGolden, TinyVocabularyVocabTxtMatchesSentenceTransformers) {
  const auto tok = WordPieceTokenizer::load_dir(testing::tiny_cls_encoder_dir());  // no tokenizer.json there
  std::vector<Ids> want = testing::read_ids("tests/llm/encoder/tiny_ids.jsonl");
  for (auto& ids : want)
    if (ids.size() > 40) {  // the same ids truncated to the directory's 40
      const int32_t sep = ids.back();
      ids.resize(39);
      ids.push_back(sep);
    }
  expect_golden(tok, 40, want, 500, "bert_tiny_cls vocab.txt");
}

TEST(WordPieceGolden, MiniLMMatchesSentenceTransformers) {
  CONDUCTOR_REQUIRE_MINILM(dir);
  const auto want = testing::read_ids("tests/tokenizer/wordpiece/minilm_ids.jsonl");
  expect_golden(WordPieceTokenizer::load_json(dir + "/tokenizer.json"), 256, want, 500, "all-MiniLM-L6-v2 tokenizer.json");
  expect_golden(WordPieceTokenizer::load_vocab(dir + "/vocab.txt", dir + "/tokenizer_config.json"), 256, want, 500,
                "all-MiniLM-L6-v2 vocab.txt");
  int truncated = 0;
  for (const auto& ids : want) truncated += ids.size() == 256;
  EXPECT_GE(truncated, 5) << "the golden strings must exercise truncation at 256";
}

// A small vocabulary for the rule-by-rule tests.
WordPieceTokenizer small(WordPieceSpec spec = {}) {
  spec.vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "hello", "world",
                "!", ",", "$", "cafe", "中", "国", "i", "x", "##x", "naive", "ı"};
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    AddedToken a;
    a.content = t;
    a.id = static_cast<int32_t>(std::find(spec.vocab.begin(), spec.vocab.end(), t) - spec.vocab.begin());
    spec.added_tokens.push_back(a);
  }
  return WordPieceTokenizer(spec, "small");
}

TEST(WordPiece, GreedyLongestMatchAndWholeWordUnknown) {
  const auto tok = small();
  EXPECT_EQ(tok.encode("unaffable"), (Ids{5, 6, 7}));
  EXPECT_EQ(tok.encode("affable"), (Ids{8, 7}));
  EXPECT_EQ(tok.encode("unaffablez hello"), (Ids{1, 9})) << "one unknown piece makes the whole word [UNK]";
  EXPECT_EQ(tok.encode("xxx"), (Ids{18, 19, 19}));
  EXPECT_EQ(tok.encode(""), Ids{});
  EXPECT_EQ(tok.encode_for_model("", 8), (Ids{2, 3}));
}

TEST(WordPiece, MaxInputCharsPerWordCountsCharacters) {
  WordPieceSpec spec;
  spec.max_input_chars_per_word = 3;
  const auto tok = small(spec);
  EXPECT_EQ(tok.encode("xxx"), (Ids{18, 19, 19}));
  EXPECT_EQ(tok.encode("xxxx"), (Ids{1}));
  spec.lowercase = false;
  spec.strip_accents = false;
  EXPECT_EQ(small(spec).encode("\xC3\xA9\xC3\xA9\xC3\xA9"), (Ids{1})) << "3 characters, 6 bytes: not over the limit, "
                                                                          "unknown because no piece matches";
}

TEST(WordPiece, NormalizerRules) {
  const auto tok = small();
  EXPECT_EQ(tok.normalize("Caf\xC3\xA9 NA\xC3\x8FVE"), "cafe naive");  // accents stripped, lower case
  EXPECT_EQ(tok.normalize("a\tb\nc\xC2\xA0" "d"), "a b c d");              // White_Space becomes ' '
  EXPECT_EQ(tok.normalize(std::string("a\x00" "b\x7f" "c\xE2\x80\x8B" "d\xEF\xBF\xBD", 12)), "abcd");  // controls, ZWSP, U+FFFD
  EXPECT_EQ(tok.normalize("\xE4\xB8\xAD\xE5\x9B\xBDx"), " \xE4\xB8\xAD  \xE5\x9B\xBD x");                  // CJK spaced
  EXPECT_EQ(tok.normalize("\xE3\x81\x82"), "\xE3\x81\x82") << "Hiragana is not a CJK ideograph";
  EXPECT_EQ(tok.normalize("\xC4\xB0"), "i") << "U+0130: NFD gives I + U+0307, the mark is stripped, then lower case";
  WordPieceSpec keep;
  keep.strip_accents = false;
  EXPECT_EQ(small(keep).normalize("\xC4\xB0"), "i\xCC\x87") << "without stripping, Rust's full lowercase mapping";
  EXPECT_EQ(small(keep).normalize("Caf\xC3\xA9"), "caf\xC3\xA9");
  WordPieceSpec cased;
  cased.lowercase = false;
  EXPECT_EQ(small(cased).normalize("Caf\xC3\xA9"), "Caf\xC3\xA9") << "strip_accents null follows lowercase";
  EXPECT_EQ(tok.encode("\xE4\xB8\xAD\xE5\x9B\xBD"), (Ids{15, 16}));
}

TEST(WordPiece, PunctuationIsSplitOff) {
  const auto tok = small();
  EXPECT_EQ(tok.pre_tokenize("hello,world!$x"), (std::vector<std::string>{"hello", ",", "world", "!", "$", "x"}));
  EXPECT_EQ(tok.pre_tokenize("  a  b "), (std::vector<std::string>{"a", "b"}));
  // U+00A7 (Po) is punctuation; U+2E5D (added in Unicode 14) is not, for HF's older tables.
  EXPECT_EQ(tok.pre_tokenize("a\xC2\xA7" "b"), (std::vector<std::string>{"a", "\xC2\xA7", "b"}));
  EXPECT_EQ(tok.pre_tokenize("a\xE2\xB9\x9D" "b"), (std::vector<std::string>{"a\xE2\xB9\x9D" "b"}));
  EXPECT_EQ(tok.encode("Hello, WORLD!"), (Ids{9, 12, 10, 11}));
}

TEST(WordPiece, SpecialTokensInTextAndTruncation) {
  const auto tok = small();
  EXPECT_EQ(tok.encode("hello[MASK]world [mask]"), (Ids{9, 4, 10, 1, 1, 1}))
      << "added tokens match the raw text only (lower-case [mask] is ordinary text: '[', 'mask', ']')";
  EXPECT_EQ(tok.encode_for_model("hello world hello world", 4), (Ids{2, 9, 10, 3}));
  EXPECT_EQ(tok.encode_for_model("hello world", 2), (Ids{2, 3}));
  EXPECT_THROW(tok.encode_for_model("hello", 1), Error);
}

TEST(WordPiece, InvalidUtf8IsAnErrorNamingTheOffset) {
  const auto tok = small();
  try {
    tok.encode("ok\xC3(");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 2"), std::string::npos) << e.what();
  }
}

// ---- malformed files ----

std::string tiny_json_path() { return testing::tiny_encoder_dir() + "/tokenizer.json"; }

// Writes the fixture's tokenizer.json with `edit` applied and returns its path.
std::string edited(const std::function<void(json&)>& edit) {
  json j = parse_json(read_file(tiny_json_path()), tiny_json_path());
  edit(j);
  const std::string path = testing::temp_dir() + "/tokenizer.json";
  std::ofstream(path) << j.dump();
  return path;
}

TEST(WordPieceErrors, RefusesOtherModelsAndComponentsByName) {
  std::string p = edited([](json& j) { j["model"]["type"] = "BPE"; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {p, "model.type", "\"BPE\"", "WordPiece"});
  p = edited([](json& j) { j["normalizer"] = {{"type", "NFC"}}; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"normalizer.type", "BertNormalizer"});
  p = edited([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"pre_tokenizer.type", "BertPreTokenizer"});
  p = edited([](json& j) { j["post_processor"] = nullptr; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"post_processor", "[CLS] $A [SEP]"});
  p = edited([](json& j) { j["post_processor"]["single"].erase(2); });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"post_processor.single", "[CLS] $A [SEP]"});
  p = edited([](json& j) { j["post_processor"]["special_tokens"]["[CLS]"]["ids"] = {7}; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"post_processor", "as id 7", "vocabulary has them at 2"});
  p = edited([](json& j) { j["model"]["surprise"] = 1; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"model.surprise", "unknown field"});
}

TEST(WordPieceErrors, MalformedVocabulary) {
  std::string p = edited([](json& j) { j["model"]["vocab"]["zzqq"] = 5000; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"model.vocab[\"zzqq\"]", "id 5000 is outside [0, 1001)"});
  p = edited([](json& j) { j["model"]["vocab"]["zzqq"] = 7; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"model.vocab", "also the id of"});
  p = edited([](json& j) { j["model"]["vocab"]["[UNK]"] = "one"; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"model.vocab[\"[UNK]\"]", "expected an id"});
  p = edited([](json& j) { j["model"].erase("unk_token"); });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"model.unk_token", "missing"});
  p = edited([](json& j) { j["model"]["max_input_chars_per_word"] = 0; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"max_input_chars_per_word", "positive integer"});
  p = edited([](json& j) { j["added_tokens"][1]["id"] = 9; });
  expect_error([&] { WordPieceTokenizer::load_json(p); }, {"added_tokens[1]", "\"[UNK]\" with id 9", "its id there is 1"});

  const std::string dir = testing::temp_dir();
  std::ofstream(dir + "/vocab.txt") << "[PAD]\n[UNK]\n[CLS]\nhello\nhello\n";
  expect_error([&] { WordPieceTokenizer::load_vocab(dir + "/vocab.txt"); }, {"vocab.txt", "\"hello\" has two ids, 3 and 4"});
  std::ofstream(dir + "/vocab.txt") << "[PAD]\n[UNK]\n[CLS]\nhello\n";
  expect_error([&] { WordPieceTokenizer::load_vocab(dir + "/vocab.txt"); }, {"SEP token \"[SEP]\" is not in the vocabulary"});
  std::filesystem::remove(dir + "/vocab.txt");
  expect_error([&] { WordPieceTokenizer::load_dir(dir); }, {dir, "neither tokenizer.json nor vocab.txt"});
  std::ofstream(dir + "/vocab.txt") << "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n";
  std::ofstream(dir + "/tokenizer_config.json") << R"({"do_lower_case": "yes"})";
  expect_error([&] { WordPieceTokenizer::load_dir(dir); }, {"tokenizer_config.json", "do_lower_case", "expected true or false"});
  std::ofstream(dir + "/tokenizer_config.json") << R"({"do_lower_case": false})";
  EXPECT_EQ(WordPieceTokenizer::load_dir(dir).encode("hello Hello"), (Ids{4, 1}));
}

}  // namespace
}  // namespace conductor
