#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/regex_split.h"
#include "tokenizer/unicode.h"

namespace conductor {
namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t key_left(uint64_t k) { return static_cast<int32_t>(k >> 32); }
int32_t key_right(uint64_t k) { return static_cast<int32_t>(k & 0xFFFFFFFFu); }

std::string to_byte_level(const std::string& raw) {
  std::string out;
  for (const char c : raw) unicode::append_utf8(out, byte_to_unicode(static_cast<uint8_t>(c)));
  return out;
}

// Splits `text` around occurrences of the special tokens (leftmost, longest first) and calls
// `piece_text` on each stretch between them.
template <class F>
void around_specials(std::string_view text, const std::vector<std::string>& specials, F&& piece_text) {
  size_t from = 0, i = 0;
  while (i < text.size()) {
    size_t best = 0;
    for (const auto& s : specials)
      if (s.size() > best && text.compare(i, s.size(), s) == 0) best = s.size();
    if (best == 0) {
      ++i;
      continue;
    }
    if (i > from) piece_text(text.substr(from, i - from));
    i += best;
    from = i;
  }
  if (from < text.size()) piece_text(text.substr(from));
}

void check_train_options(const BpeTrainOptions& options) {
  const int32_t n_special = static_cast<int32_t>(options.special_tokens.size());
  if (options.vocab_size < 256 + n_special)
    fail("tokenizer train: --vocab-size ", options.vocab_size, " is too small: the byte alphabet takes 256 ids and the ",
         n_special, " special tokens take ", n_special, " more (at least ", 256 + n_special, ")");
  if (options.min_frequency < 1) fail("tokenizer train: min_frequency must be at least 1");
  for (const auto& s : options.special_tokens)
    if (s.empty() || unicode::find_invalid_utf8(s) != unicode::kValid)
      fail("tokenizer train: special token ", s.empty() ? "\"\"" : "with invalid UTF-8", " is not allowed");
}

// 1. Count pieces: the pre-tokenizer's pieces of the NFC texts between special tokens (adds to
// result.pieces).
std::unordered_map<std::string, int64_t> count_pieces(const std::vector<std::string>& texts,
                                                      const BpeTrainOptions& options, BpeTrainResult& result) {
  const auto splitter = make_regex_splitter(kQwen2Pattern, "tokenizer train");
  std::unordered_map<std::string, int64_t> piece_counts;
  std::vector<Span> spans;
  for (size_t t = 0; t < texts.size(); ++t) {
    if (const size_t off = unicode::find_invalid_utf8(texts[t]); off != unicode::kValid)
      fail("tokenizer train: text ", t, " is not valid UTF-8 at byte ", off);
    around_specials(texts[t], options.special_tokens, [&](std::string_view raw) {
      const std::string text = unicode::nfc(raw);
      spans.clear();
      splitter->split(text, spans);
      for (const Span& s : spans) ++piece_counts[text.substr(s.begin, s.end - s.begin)];
      result.pieces += static_cast<int64_t>(spans.size());
    });
  }
  return piece_counts;
}

// The trainer's state: the token table, the pieces as token-id words with their counts, and the
// adjacent pairs' counts and words.
struct BpeState {
  std::vector<std::string> tokens;  // id -> raw bytes
  std::unordered_map<std::string, int32_t> token_ids;
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;  // may hold stale or repeated entries
};

// 2. Symbols: ids 0..255 are the bytes in byte-level table order; every piece of two or more bytes
// becomes a word of byte ids, and its adjacent pairs are counted.
BpeState byte_words(std::unordered_map<std::string, int64_t> piece_counts) {
  BpeState st;
  int32_t byte_id[256];
  for (const uint8_t b : byte_level_order()) {
    byte_id[b] = static_cast<int32_t>(st.tokens.size());
    st.token_ids.emplace(std::string(1, static_cast<char>(b)), byte_id[b]);
    st.tokens.emplace_back(1, static_cast<char>(b));
  }

  // Pieces in a fixed order (sorted), so that nothing depends on hash-map iteration order.
  std::vector<std::pair<std::string, int64_t>> sorted(piece_counts.begin(), piece_counts.end());
  std::sort(sorted.begin(), sorted.end());
  piece_counts.clear();
  for (const auto& [piece, count] : sorted) {
    if (piece.size() < 2) continue;  // a single byte has no pair
    std::vector<int32_t> w;
    w.reserve(piece.size());
    for (const char c : piece) w.push_back(byte_id[static_cast<unsigned char>(c)]);
    st.words.push_back(std::move(w));
    st.counts.push_back(count);
  }
  sorted.clear();

  for (size_t w = 0; w < st.words.size(); ++w) {
    for (size_t i = 0; i + 1 < st.words[w].size(); ++i) {
      const uint64_t k = pair_key(st.words[w][i], st.words[w][i + 1]);
      st.pair_count[k] += st.counts[w];
      auto& list = st.pair_words[k];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) list.push_back(static_cast<int32_t>(w));
    }
  }
  return st;
}

// Replaces every occurrence of `pair` by `merged` in the words that hold it, updating the pair
// counts and words; `touched` receives the pairs that contain `merged` (sorted, unique).
void replace_pair(BpeState& st, uint64_t pair, int32_t merged, std::vector<uint64_t>& touched) {
  const int32_t left = key_left(pair), right = key_right(pair);
  std::vector<int32_t> affected = std::move(st.pair_words[pair]);
  st.pair_words.erase(pair);
  std::sort(affected.begin(), affected.end());
  affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
  touched.clear();
  for (const int32_t wi : affected) {
    std::vector<int32_t>& w = st.words[wi];
    bool has = false;
    for (size_t i = 0; i + 1 < w.size() && !has; ++i) has = w[i] == left && w[i + 1] == right;
    if (!has) continue;  // a stale entry: an earlier merge already consumed this pair here
    const int64_t c = st.counts[wi];
    for (size_t i = 0; i + 1 < w.size(); ++i) st.pair_count[pair_key(w[i], w[i + 1])] -= c;
    std::vector<int32_t> next;
    next.reserve(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      if (i + 1 < w.size() && w[i] == left && w[i + 1] == right) {
        next.push_back(merged);
        ++i;
      } else {
        next.push_back(w[i]);
      }
    }
    w.swap(next);
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      const uint64_t k = pair_key(w[i], w[i + 1]);
      st.pair_count[k] += c;
      if (w[i] == merged || w[i + 1] == merged) {
        auto& list = st.pair_words[k];
        if (list.empty() || list.back() != wi) list.push_back(wi);
        touched.push_back(k);
      }
    }
  }
  st.pair_count.erase(pair);
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
}

// The merges, most frequent pair first, until the token table holds target_model_size tokens, no
// pair is left or the best pair is rarer than min_frequency.
std::vector<std::pair<int32_t, int32_t>> learn_merges(BpeState& st, int32_t target_model_size,
                                                      const BpeTrainOptions& options) {
  struct Candidate {
    int64_t count;
    uint64_t pair;
  };
  const std::vector<std::string>& tokens = st.tokens;
  // Highest count first; ties: smallest (left bytes, right bytes).
  const auto worse = [&](const Candidate& a, const Candidate& b) {
    if (a.count != b.count) return a.count < b.count;
    const std::string& al = tokens[key_left(a.pair)];
    const std::string& bl = tokens[key_left(b.pair)];
    if (al != bl) return al > bl;
    return tokens[key_right(a.pair)] > tokens[key_right(b.pair)];
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(worse);
  {
    std::vector<uint64_t> keys;
    keys.reserve(st.pair_count.size());
    for (const auto& [k, c] : st.pair_count) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    for (const uint64_t k : keys) heap.push({st.pair_count[k], k});
  }

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<uint64_t> touched;
  while (static_cast<int32_t>(st.tokens.size()) < target_model_size && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    auto pc = st.pair_count.find(top.pair);
    const int64_t current = pc == st.pair_count.end() ? 0 : pc->second;
    if (current != top.count) {
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < options.min_frequency) break;

    const int32_t left = key_left(top.pair), right = key_right(top.pair);
    const std::string merged_bytes = st.tokens[left] + st.tokens[right];
    int32_t merged;
    if (auto it = st.token_ids.find(merged_bytes); it != st.token_ids.end()) {
      merged = it->second;  // the same string reached by another pair of pieces
    } else {
      merged = static_cast<int32_t>(st.tokens.size());
      st.tokens.push_back(merged_bytes);
      st.token_ids.emplace(merged_bytes, merged);
    }
    merges.emplace_back(left, right);

    replace_pair(st, top.pair, merged, touched);
    for (const uint64_t k : touched)
      if (const int64_t c = st.pair_count[k]; c > 0) heap.push({c, k});
  }
  return merges;
}

// 3. The spec, Qwen2-shaped.
void fill_spec(BpeSpec& spec, const std::vector<std::string>& tokens,
               const std::vector<std::pair<int32_t, int32_t>>& merges, const BpeTrainOptions& options) {
  const int32_t n_special = static_cast<int32_t>(options.special_tokens.size());
  spec.nfc = true;
  spec.split_patterns = {kQwen2Pattern};
  spec.pre_byte_level = ByteLevelFlags{false, false, false};
  spec.post_processor = ByteLevelFlags{false, false, false};
  spec.decoder = ByteLevelFlags{false, false, false};
  spec.merges_as_pairs = true;
  for (size_t id = 0; id < tokens.size(); ++id) spec.vocab.emplace_back(to_byte_level(tokens[id]), static_cast<int32_t>(id));
  for (const auto& [a, b] : merges) spec.merges.emplace_back(to_byte_level(tokens[a]), to_byte_level(tokens[b]));
  for (int32_t k = 0; k < n_special; ++k) {
    AddedToken t;
    t.id = static_cast<int32_t>(tokens.size()) + k;
    t.content = options.special_tokens[k];
    t.special = true;
    t.normalized = false;
    spec.added_tokens.push_back(t);
  }
}

}  // namespace

BpeTrainResult train_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& options) {
  check_train_options(options);
  const int32_t n_special = static_cast<int32_t>(options.special_tokens.size());
  const int32_t target_model_size = options.vocab_size - n_special;

  BpeTrainResult result;
  std::unordered_map<std::string, int64_t> piece_counts = count_pieces(texts, options, result);
  result.unique_pieces = static_cast<int64_t>(piece_counts.size());
  BpeState st = byte_words(std::move(piece_counts));
  const auto merges = learn_merges(st, target_model_size, options);
  result.merges = static_cast<int32_t>(merges.size());
  result.reached_vocab_size = static_cast<int32_t>(st.tokens.size()) == target_model_size;
  fill_spec(result.spec, st.tokens, merges, options);
  return result;
}

}  // namespace conductor
