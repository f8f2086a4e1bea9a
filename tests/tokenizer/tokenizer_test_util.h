// Helpers shared by the tokenizer tests: the checked-in fixture, the golden sample and the real
// Qwen3 tokenizer.json of the shared data (../shared/data/qwen3-tokenizer/).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/bpe_tokenizer.h"

namespace conductor::testing {

inline std::string tokenizer_test_dir() { return std::string(CONDUCTOR_SOURCE_DIR) + "/tests/tokenizer"; }

// A byte-level BPE trained by `conductor tokenizer train` on fixture/corpus.txt (1024 ids).
inline std::string fixture_tokenizer_path() { return tokenizer_test_dir() + "/fixture/tokenizer.json"; }

inline const BpeTokenizer& fixture_tokenizer() {
  static const BpeTokenizer tok = BpeTokenizer::load(fixture_tokenizer_path());
  return tok;
}

// One JSONL file's lines, parsed.
inline std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  std::vector<json> rows;
  std::string line;
  while (std::getline(in, line)) rows.push_back(parse_json(line, path));
  return rows;
}

// The golden texts (tests/tokenizer/golden/sample.jsonl).
inline std::vector<std::string> golden_texts() {
  std::vector<std::string> texts;
  for (const json& row : read_jsonl(tokenizer_test_dir() + "/golden/sample.jsonl"))
    texts.push_back(row.at("text").get<std::string>());
  return texts;
}

// The real Qwen3 tokenizer.json: $CONDUCTOR_QWEN_TOKENIZER, else ../shared/data/qwen3-tokenizer/ (the
// shared data beside the checkout, read-only), else <build dir>/third_party/qwen3-tokenizer/; "" when
// none exists.
inline std::string qwen_tokenizer_path() {
  if (const char* env = std::getenv("CONDUCTOR_QWEN_TOKENIZER"); env && *env)
    return std::filesystem::is_regular_file(env) ? std::string(env) : std::string();
  for (const std::string& p : {std::string(CONDUCTOR_SHARED_DATA) + "/qwen3-tokenizer/tokenizer.json",
                              std::string(CONDUCTOR_BINARY_DIR) + "/third_party/qwen3-tokenizer/tokenizer.json"})
    if (std::filesystem::is_regular_file(p)) return p;
  return std::string();
}

}  // namespace conductor::testing

#define CONDUCTOR_REQUIRE_QWEN_TOKENIZER(var)                                                          \
  const std::string var = ::conductor::testing::qwen_tokenizer_path();                                 \
  if (var.empty())                                                                                      \
  GTEST_SKIP() << "the real Qwen3 tokenizer.json is absent from " << CONDUCTOR_SHARED_DATA             \
               << "/qwen3-tokenizer/ (the shared data; or set CONDUCTOR_QWEN_TOKENIZER to the file)"
