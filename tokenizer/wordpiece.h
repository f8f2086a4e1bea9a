// WordPiece tokenizer of BERT-family sentence encoders, loaded from an HF `tokenizer.json` or from
// `vocab.txt` (+ `tokenizer_config.json`), reproducing HF tokenizers' ids (BertTokenizerFast, what
// sentence-transformers runs; checked against it by tests/tokenizer/wordpiece_test.cpp).
//
// Pipeline of encode(text), as in HF tokenizers:
//   1. special added tokens ([CLS], [SEP], [PAD], [MASK], [UNK], ...; `normalized` false) are cut out
//      of the raw text, leftmost match, the longest at that position;
//   2. BertNormalizer on every other stretch: clean_text (drop U+0000, U+FFFD and control
//      characters, every White_Space character becomes ' '), handle_chinese_chars (a space on both
//      sides of every CJK ideograph), strip_accents (NFD, then drop non-spacing marks; when null it
//      follows `lowercase`), lowercase (Rust's char::to_lowercase, full mapping);
//   3. BertPreTokenizer: split on White_Space (dropped) and around every punctuation character
//      (ASCII punctuation, which includes $ + < = > ^ ` | ~, and Unicode P*), each its own word;
//   4. WordPiece per word: a word of more than max_input_chars_per_word characters is [UNK];
//      otherwise greedy longest-match-first over the vocabulary, pieces after the first looked up
//      with the continuing-subword prefix ("##"); a word with any position no piece matches is one
//      [UNK].
// encode_for_model() then truncates to max_length - 2 ids and adds [CLS] ... [SEP] (the single-
// sequence template of the post-processor).
// The character classes (control, non-spacing mark, punctuation, lowercase) are the ones HF uses,
// probed code point by code point from the pinned tokenizers package (tokenizer/bert_char_tables.inc);
// NFD is utf8proc's. See docs/encoder.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe_tokenizer.h"

namespace conductor {

struct WordPieceSpec {
  // BertNormalizer
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // null: strip when lowercasing (HF's default)
  bool lowercase = true;
  // WordPiece model
  std::vector<std::string> vocab;  // by id
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  int64_t max_input_chars_per_word = 100;
  // Post-processor: [CLS] $A [SEP]
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  // Special tokens matched in the raw text (HF added_tokens with normalized false).
  std::vector<AddedToken> added_tokens;
};

class WordPieceTokenizer {
 public:
  // tokenizer.json (model WordPiece, normalizer BertNormalizer, pre_tokenizer BertPreTokenizer,
  // post_processor TemplateProcessing "[CLS] $A [SEP]" or BertProcessing); every unsupported or
  // malformed field is a conductor::Error naming the file and the JSON path.
  static WordPieceTokenizer load_json(const std::string& path);
  // vocab.txt (one token a line, id = line number) with the BertTokenizer options of
  // tokenizer_config.json when that path is given and exists (do_lower_case, strip_accents,
  // tokenize_chinese_chars, unk/cls/sep/pad tokens), as transformers converts it to a fast tokenizer.
  static WordPieceTokenizer load_vocab(const std::string& vocab_path, const std::string& tokenizer_config_path = "");
  // DIR/tokenizer.json when present, else DIR/vocab.txt (+ DIR/tokenizer_config.json).
  static WordPieceTokenizer load_dir(const std::string& dir);

  // Checks the spec (vocabulary without duplicates, special tokens present, ...); `name` (a file)
  // prefixes every error.
  WordPieceTokenizer(WordPieceSpec spec, std::string name);

  // Ids of `text`, no special tokens added. Invalid UTF-8 is a conductor::Error naming the byte
  // offset. Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;
  // [CLS] + the first max_length - 2 ids of encode(text) + [SEP] (max_length >= 2). Thread-safe.
  std::vector<int32_t> encode_for_model(std::string_view text, int64_t max_length) const;
  // The normalized text (step 2 only, on the whole text) and the words of step 3: for tests and
  // debugging.
  std::string normalize(std::string_view text) const;
  std::vector<std::string> pre_tokenize(std::string_view normalized) const;

  std::optional<int32_t> find_token(std::string_view token) const;
  const std::string& token(int32_t id) const;  // throws for an id outside the vocabulary
  int32_t vocab_size() const { return static_cast<int32_t>(spec_.vocab.size()); }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  const WordPieceSpec& spec() const { return spec_; }
  const std::string& name() const { return name_; }

 private:
  void word_pieces(std::string_view word, std::vector<int32_t>& out) const;
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;

  WordPieceSpec spec_;
  std::string name_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t cls_id_ = -1, sep_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  std::size_t longest_token_bytes_ = 0;
};

}  // namespace conductor
