// Byte-level BPE tokenizer of the Qwen2 kind, loaded from an HF `tokenizer.json`, reproducing HF
// tokenizers' ids exactly (checked against the real Qwen3 file by tests/tokenizer/golden_test.cpp).
//
// Pipeline of encode(text), as in HF tokenizers with add_special_tokens=false:
//   1. added tokens whose `normalized` is false are cut out of the raw text (leftmost match,
//      longest at that position; `single_word`, `lstrip`, `rstrip` as HF applies them);
//   2. every other stretch is normalized (NFC), then added tokens whose `normalized` is true are
//      cut out of the normalized stretch;
//   3. the rest is split by the Split(Regex, Isolated) pre-tokenizer(s), each piece's bytes are
//      mapped to the GPT-2 byte-level alphabet and merged by BPE (lowest merge rank first, the
//      leftmost of equal ranks first), and the pieces' tokens are looked up in the vocabulary.
// Supported tokenizer.json content (anything else is refused with the file and the JSON path):
//   normalizer NFC | null | Sequence of those; pre_tokenizer Sequence[Split(Regex, Isolated, invert
//   false)..., ByteLevel(add_prefix_space false, use_regex false)] or a lone such ByteLevel;
//   post_processor ByteLevel | null; decoder ByteLevel; model BPE (vocab; merges as "a b" strings
//   or [a, b] pairs; ignore_merges; dropout null; byte_fallback false; no subword prefix/suffix);
//   truncation and padding null; added_tokens with all seven HF fields.
// See docs/tokenizer.md for the details and the known differences from other implementations.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace conductor {

// One entry of tokenizer.json's `added_tokens`.
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;  // match only when not inside a word (HF's \w on both sides)
  bool lstrip = false;       // the match swallows the whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool normalized = false;   // matched in the NFC-normalized text instead of the raw text
  bool special = true;       // skipped by decode(ids, /*skip_special=*/true)
};

struct ByteLevelFlags {
  bool add_prefix_space = false;
  bool trim_offsets = false;
  bool use_regex = false;
};

// Everything a supported tokenizer.json holds, as plain data: what the loader produces, what the
// trainer builds and what write_json() writes.
struct BpeSpec {
  std::string version = "1.0";
  bool nfc = true;                              // normalizer: NFC (true) or none
  std::vector<std::string> split_patterns;      // Split(Regex, Isolated) stages, in order
  ByteLevelFlags pre_byte_level;                // the pre-tokenizer's final ByteLevel step
  std::optional<ByteLevelFlags> post_processor;  // ByteLevel, or none
  ByteLevelFlags decoder;                        // ByteLevel
  std::vector<std::pair<std::string, int32_t>> vocab;  // model.vocab (byte-level strings), any order
  std::vector<std::pair<std::string, std::string>> merges;  // model.merges, by rank
  bool merges_as_pairs = true;  // written as [a, b] (tokenizers >= 0.20) or as "a b"
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool ignore_merges = false;  // a piece that is itself in the vocabulary is not merged
  std::vector<AddedToken> added_tokens;
};

struct BpeOptions {
  bool force_pcre2 = false;        // run even the Qwen2 pattern through PCRE2 (tests, benchmarks)
  size_t cache_entries = 1 << 16;  // per-piece merge cache (pieces under 256 bytes); 0 disables it
};

// Parses tokenizer.json text. `name` (the file) starts every error message, followed by the JSON
// path of the offending field and what was expected.
BpeSpec parse_tokenizer_json(const std::string& text, const std::string& name);
// The tokenizer.json text of `spec` (UTF-8, 2-space indentation, vocab in id order, added tokens
// in id order with the seven HF fields).
std::string tokenizer_json_text(const BpeSpec& spec);

class BpeTokenizer {
 public:
  // Reads and checks `path`; every malformed or unsupported field is a conductor::Error naming
  // the file and the JSON path.
  static BpeTokenizer load(const std::string& path, const BpeOptions& options = {});
  // Builds from a spec (checked as strictly as a file); `name` is used in error messages.
  BpeTokenizer(BpeSpec spec, std::string name, const BpeOptions& options = {});
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

  // Token ids of `text`, no special tokens added around it. Throws conductor::Error naming the
  // byte offset when `text` is not valid UTF-8 (see sanitize_utf8()). Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;
  // The text of `ids` (byte-level decoding; bytes that do not form UTF-8 become U+FFFD, as in
  // HF). With skip_special, special added tokens are left out. Throws on an id outside the
  // vocabulary. Thread-safe.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // Id of a token given by its content (an added token's text or a vocabulary string such as
  // "Ġthe"), added tokens first as in HF.
  std::optional<int32_t> find_token(std::string_view content) const;
  // Same, but throws conductor::Error naming the token and the tokenizer file when absent.
  int32_t token_id(std::string_view content) const;
  // The content of token `id` (throws when there is none).
  std::string token_content(int32_t id) const;
  // Largest id + 1, added tokens included.
  int32_t vocab_size() const;
  const std::vector<AddedToken>& added_tokens() const;

  // Appends special added tokens (special, not normalized, no strip, not single-word) after the
  // largest id, in order, and returns their ids. A name that is already an added token or a
  // vocabulary string returns its existing id (a vocabulary string becomes a special added token
  // with that id, as HF's add_special_tokens does). Not thread-safe with concurrent encode().
  std::vector<int32_t> add_special_tokens(const std::vector<std::string>& names);

  // The current state (added tokens included) as a spec / as tokenizer.json, written atomically.
  BpeSpec spec() const;
  void write_json(const std::string& path) const;

  const std::string& name() const;
  // The pre-tokenizer's regex engine(s), e.g. "qwen2-scanner".
  std::string split_engine() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `s` with every ill-formed UTF-8 sequence replaced by U+FFFD (one per maximal subpart, as
// Rust's from_utf8_lossy and JavaScript's TextDecoder do). Valid text is returned unchanged.
std::string sanitize_utf8(std::string_view s);

// The GPT-2 byte-level alphabet: byte b is written as the code point byte_to_unicode(b)
// (printable Latin-1 bytes as themselves, the other 68 bytes as U+0100..U+0143).
char32_t byte_to_unicode(uint8_t b);
// The byte that code point `cp` stands for, or -1 when cp is not in the alphabet.
int unicode_to_byte(char32_t cp);
// The 256 bytes in the order of the alphabet's table (the order of Qwen2's first 256 ids).
const std::vector<uint8_t>& byte_level_order();

}  // namespace conductor
