// Fixtures of the WordPiece tokenizer and the sentence encoder, shared by tests/tokenizer and
// tests/llm: the 500 golden strings and their ids (made by tests/llm/reference/make_encoder_fixtures.py
// with sentence-transformers), the random-weight BERT directories, and the real all-MiniLM-L6-v2
// directory that scripts/fetch-encoder.sh installs.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace conductor::testing {

inline std::string source_path(const std::string& rel) { return std::string(CONDUCTOR_SOURCE_DIR) + "/" + rel; }

// tests/tokenizer/wordpiece/strings.jsonl: 500 varied strings.
inline const std::vector<std::string>& encoder_strings() {
  static const std::vector<std::string> s = [] {
    std::vector<std::string> out;
    for (const json& row : read_jsonl(source_path("tests/tokenizer/wordpiece/strings.jsonl")))
      out.push_back(row.get<std::string>());
    return out;
  }();
  return s;
}

inline std::vector<std::vector<int32_t>> read_ids(const std::string& rel) {
  std::vector<std::vector<int32_t>> out;
  for (const json& row : read_jsonl(source_path(rel))) out.push_back(row.get<std::vector<int32_t>>());
  return out;
}

// Random-weight BERT sentence encoders in HF / sentence-transformers layout:
// bert_tiny: tokenizer.json, mean pooling + Normalize, max_seq_length 48 (sentence-transformers 6 files);
// bert_tiny_cls: vocab.txt only, CLS + max + mean-sqrt-len pooling, "bert." tensor names,
// max_seq_length 40 (sentence-transformers 2.x files, as most published models).
inline std::string tiny_encoder_dir() { return source_path("tests/llm/fixtures/bert_tiny"); }
inline std::string tiny_cls_encoder_dir() { return source_path("tests/llm/fixtures/bert_tiny_cls"); }

// The real all-MiniLM-L6-v2: $CONDUCTOR_ENCODER_DIR, else <build dir>/third_party/all-MiniLM-L6-v2,
// else <source>/build/third_party/all-MiniLM-L6-v2 (where scripts/fetch-encoder.sh puts it); "" when
// none holds model.safetensors.
inline std::string minilm_dir() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("CONDUCTOR_ENCODER_DIR"); env && *env) candidates.push_back(env);
  candidates.push_back(std::string(CONDUCTOR_BINARY_DIR) + "/third_party/all-MiniLM-L6-v2");
  candidates.push_back(source_path("build/third_party/all-MiniLM-L6-v2"));
  for (const auto& d : candidates)
    if (std::filesystem::is_regular_file(d + "/model.safetensors")) return d;
  return std::string();
}

}  // namespace conductor::testing

#define CONDUCTOR_REQUIRE_MINILM(var)                                                                    \
  const std::string var = ::conductor::testing::minilm_dir();                                            \
  if (var.empty())                                                                                       \
  GTEST_SKIP() << "all-MiniLM-L6-v2 is absent (looked in $CONDUCTOR_ENCODER_DIR, " << CONDUCTOR_BINARY_DIR \
               << "/third_party/all-MiniLM-L6-v2 and build/third_party/all-MiniLM-L6-v2); run "             \
                  "scripts/fetch-encoder.sh [DEST] to fetch it"
