#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/regex_split.h"
#include "tokenizer/unicode.h"

namespace conductor {
namespace {

// ---- the GPT-2 byte-level alphabet ---------------------------------------------------------

struct ByteTables {
  char32_t to_unicode[256];
  int16_t to_byte[0x144];  // code points below U+0144 -> byte, or -1
  std::vector<uint8_t> order;
  ByteTables() {
    std::fill(std::begin(to_byte), std::end(to_byte), int16_t{-1});
    const auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    for (int b = 0; b < 256; ++b)
      if (printable(b)) order.push_back(static_cast<uint8_t>(b));
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      if (printable(b)) {
        to_unicode[b] = static_cast<char32_t>(b);
      } else {
        to_unicode[b] = static_cast<char32_t>(256 + extra++);
        order.push_back(static_cast<uint8_t>(b));
      }
      to_byte[to_unicode[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

// Byte-level string -> raw bytes, as HF's ByteLevel decoder does per token: when every character
// is in the alphabet, the bytes they stand for; otherwise the token's own UTF-8 bytes.
std::string byte_level_decode(std::string_view token) {
  std::string out;
  size_t i = 0;
  while (i < token.size()) {
    int len;
    const char32_t cp = unicode::decode_at(token, i, len);
    const int b = unicode_to_byte(cp);
    if (b < 0) return std::string(token);
    out.push_back(static_cast<char>(b));
    i += len;
  }
  return out;
}

std::string quote(std::string_view s) { return json(sanitize_utf8(s)).dump(); }

// Largest id accepted (vocabularies in use stay far below: Qwen2's is 151,668).
constexpr int32_t kMaxId = (1 << 24) - 1;

// ---- merge table: (left id, right id) -> (rank, merged id), open addressing ----------------

class MergeMap {
 public:
  struct Entry {
    uint64_t key;
    int32_t rank;
    int32_t id;
  };
  void build(const std::vector<std::array<int32_t, 3>>& merges) {  // {left, right, merged}, by rank
    size_t cap = 16;
    while (cap < merges.size() * 2) cap <<= 1;
    slots_.assign(cap, Entry{kEmpty, 0, 0});
    mask_ = cap - 1;
    for (size_t r = 0; r < merges.size(); ++r) {
      const uint64_t key = make_key(merges[r][0], merges[r][1]);
      size_t i = hash(key) & mask_;
      while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
      // A repeated pair keeps its last rank, as HF's HashMap built from the merges list does.
      slots_[i] = Entry{key, static_cast<int32_t>(r), merges[r][2]};
    }
  }
  const Entry* find(int32_t a, int32_t b) const {
    const uint64_t key = make_key(a, b);
    size_t i = hash(key) & mask_;
    while (true) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
      i = (i + 1) & mask_;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t make_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  std::vector<Entry> slots_;
  size_t mask_ = 0;
};

// ---- per-piece result cache, sharded, safe for concurrent encode() -------------------------

class PieceCache {
 public:
  static constexpr size_t kMaxPieceBytes = 256;
  explicit PieceCache(size_t entries) : per_shard_(entries / kShards) {}

  bool enabled() const { return per_shard_ > 0; }
  bool lookup(const std::string& key, size_t h, std::vector<int32_t>& out) const {
    const Shard& s = shards_[h % kShards];
    std::shared_lock lock(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void insert(const std::string& key, size_t h, const int32_t* ids, size_t n) {
    Shard& s = shards_[h % kShards];
    std::unique_lock lock(s.mu);
    if (s.map.size() >= per_shard_) s.map.clear();  // bounded memory; refills with what is frequent
    s.map.emplace(key, std::vector<int32_t>(ids, ids + n));
  }

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

// ---- added-token matching: leftmost match, the longest at that position ---------------------

class TokenTrie {
 public:
  struct Match {
    size_t begin = std::string::npos, end = 0;
    int token = -1;  // index into the added tokens
  };
  void clear() {
    nodes_.assign(1, Node{});
    first_.reset();
  }
  bool empty() const { return nodes_.size() <= 1; }
  void add(std::string_view pattern, int token) {
    if (nodes_.empty()) clear();
    first_.set(static_cast<unsigned char>(pattern[0]));
    int n = 0;
    for (const char c : pattern) {
      const auto b = static_cast<unsigned char>(c);
      int next = -1;
      for (const auto& [byte, child] : nodes_[n].next)
        if (byte == b) next = child;
      if (next < 0) {
        next = static_cast<int>(nodes_.size());
        nodes_[n].next.emplace_back(b, next);
        nodes_.push_back(Node{});
      }
      n = next;
    }
    nodes_[n].token = token;
  }
  Match find(std::string_view s, size_t from) const {
    Match m;
    if (empty()) return m;
    for (size_t i = from; i < s.size(); ++i) {
      if (!first_.test(static_cast<unsigned char>(s[i]))) continue;
      int n = 0;
      for (size_t j = i; j < s.size(); ++j) {
        const auto b = static_cast<unsigned char>(s[j]);
        int next = -1;
        for (const auto& [byte, child] : nodes_[n].next)
          if (byte == b) next = child;
        if (next < 0) break;
        n = next;
        if (nodes_[n].token >= 0) {
          m.begin = i;
          m.end = j + 1;
          m.token = nodes_[n].token;
        }
      }
      if (m.token >= 0) return m;
    }
    return m;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> next;
    int token = -1;
  };
  std::vector<Node> nodes_;
  std::bitset<256> first_;
};

struct Segment {
  size_t begin, end;
  int token;  // added-token index, or -1 for text
};

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  int len;
  return unicode::is_word_char(unicode::decode_at(s, i, len));
}
bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  int len;
  return unicode::is_word_char(unicode::decode_at(s, 0, len));
}
size_t trailing_space_begin(std::string_view s) {  // start of the White_Space run ending s
  size_t i = s.size();
  while (i > 0) {
    size_t j = i - 1;
    while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) --j;
    int len;
    if (!unicode::is_white_space(unicode::decode_at(s, j, len))) break;
    i = j;
  }
  return i;
}
size_t leading_space_end(std::string_view s) {  // end of the White_Space run starting s
  size_t i = 0;
  while (i < s.size()) {
    int len;
    if (!unicode::is_white_space(unicode::decode_at(s, i, len))) break;
    i += len;
  }
  return i;
}

struct BpeScratch {
  std::vector<int32_t> ids, prev, next;
  struct Candidate {
    int32_t rank, pos, left, right, merged;
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }  // min-heap
  };
  std::vector<Candidate> heap;
  std::string key;
};

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return byte_tables().to_unicode[b]; }
int unicode_to_byte(char32_t cp) { return cp < 0x144 ? byte_tables().to_byte[cp] : -1; }
const std::vector<uint8_t>& byte_level_order() { return byte_tables().order; }
std::string sanitize_utf8(std::string_view s) { return unicode::sanitize_utf8(s); }

// =============================================================================================

struct BpeTokenizer::Impl {
  std::string name;
  BpeOptions options;
  BpeSpec components;  // everything but vocab, merges and added tokens (kept below in id form)

  std::vector<std::unique_ptr<RegexSplitter>> splitters;

  std::vector<std::string> model_tokens;  // id -> byte-level string; "" for ids the model lacks
  std::vector<uint8_t> in_model;
  std::unordered_map<std::string, int32_t> model_ids;
  std::vector<std::pair<int32_t, int32_t>> merges;  // by rank
  MergeMap merge_map;
  int32_t byte_ids[256];
  std::unordered_map<std::string, int32_t> raw_vocab;  // raw bytes -> id, only with ignore_merges

  std::vector<AddedToken> added;
  std::unordered_map<std::string, int> added_by_content;
  std::unordered_map<int32_t, int> added_by_id;
  TokenTrie raw_trie, normalized_trie;

  int32_t size = 0;                  // largest id + 1
  std::vector<std::string> decoded;  // id -> bytes that decode() emits
  std::vector<uint8_t> known, special;

  mutable PieceCache cache;

  Impl(std::string n, const BpeOptions& o) : name(std::move(n)), options(o), cache(o.cache_entries) {}

  [[noreturn]] void bad(const std::string& path, const std::string& what) const { fail(name, ": ", path, ": ", what); }

  void build(BpeSpec spec);
  void check_added(const AddedToken& a, const std::string& path) const;
  void index_added();

  void split_added(std::string_view s, const TokenTrie& trie, std::vector<Segment>& out) const;
  void encode_section(std::string_view raw, std::vector<int32_t>& out) const;
  void encode_normalized(std::string_view s, std::vector<int32_t>& out) const;
  void encode_plain(std::string_view s, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_piece(std::string_view piece, std::vector<int32_t>& out) const;
};

void BpeTokenizer::Impl::build(BpeSpec spec) {
  // Model vocabulary. Ids index dense tables, so a stray huge id must not allocate gigabytes.
  int32_t max_id = -1;
  for (const auto& [token, id] : spec.vocab) {
    if (id > kMaxId)
      bad("model.vocab[" + quote(token) + "]", "id " + std::to_string(id) + " is above the supported maximum " +
                                                    std::to_string(kMaxId));
    max_id = std::max(max_id, id);
  }
  model_tokens.assign(static_cast<size_t>(max_id + 1), std::string());
  in_model.assign(static_cast<size_t>(max_id + 1), 0);
  model_ids.reserve(spec.vocab.size());
  for (const auto& [token, id] : spec.vocab) {
    if (id < 0) bad("model.vocab[" + quote(token) + "]", "negative id " + std::to_string(id));
    if (token.empty()) bad("model.vocab", "the empty string is not a token");
    if (unicode::find_invalid_utf8(token) != unicode::kValid) bad("model.vocab", "a token is not valid UTF-8");
    if (in_model[id])
      bad("model.vocab[" + quote(token) + "]",
          "id " + std::to_string(id) + " is also the id of " + quote(model_tokens[id]));
    if (!model_ids.emplace(token, id).second) bad("model.vocab[" + quote(token) + "]", "listed twice");
    model_tokens[id] = token;
    in_model[id] = 1;
  }
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    unicode::append_utf8(ch, byte_to_unicode(static_cast<uint8_t>(b)));
    auto it = model_ids.find(ch);
    if (it == model_ids.end()) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      bad("model.vocab", "the byte-level character " + quote(ch) + " (byte " + hex +
                             ") is missing: a byte-level BPE needs a token for each of the 256 bytes");
    }
    byte_ids[b] = it->second;
  }
  if (spec.unk_token && !model_ids.count(*spec.unk_token))
    bad("model.unk_token", quote(*spec.unk_token) + " is not in model.vocab");

  // Merges.
  std::vector<std::array<int32_t, 3>> triples;
  triples.reserve(spec.merges.size());
  merges.reserve(spec.merges.size());
  for (size_t r = 0; r < spec.merges.size(); ++r) {
    const auto& [a, b] = spec.merges[r];
    const std::string path = "model.merges[" + std::to_string(r) + "]";
    auto ia = model_ids.find(a);
    if (ia == model_ids.end()) bad(path, quote(a) + " is not in model.vocab");
    auto ib = model_ids.find(b);
    if (ib == model_ids.end()) bad(path, quote(b) + " is not in model.vocab");
    auto im = model_ids.find(a + b);
    if (im == model_ids.end()) bad(path, "the merged token " + quote(a + b) + " is not in model.vocab");
    triples.push_back({ia->second, ib->second, im->second});
    merges.emplace_back(ia->second, ib->second);
  }
  merge_map.build(triples);
  if (spec.ignore_merges)
    for (const auto& [token, id] : spec.vocab) raw_vocab.emplace(byte_level_decode(token), id);

  // Pre-tokenizer.
  for (size_t i = 0; i < spec.split_patterns.size(); ++i)
    splitters.push_back(make_regex_splitter(
        spec.split_patterns[i],
        name + ": pre_tokenizer.pretokenizers[" + std::to_string(i) + "].pattern.Regex", options.force_pcre2));
  if (spec.pre_byte_level.add_prefix_space) bad("pre_tokenizer", "ByteLevel add_prefix_space true is not supported");
  if (spec.pre_byte_level.use_regex) bad("pre_tokenizer", "ByteLevel use_regex true is not supported");

  // Added tokens.
  std::unordered_map<int32_t, size_t> seen_ids;
  for (size_t i = 0; i < spec.added_tokens.size(); ++i) {
    const AddedToken& a = spec.added_tokens[i];
    const std::string path = "added_tokens[" + std::to_string(i) + "]";
    check_added(a, path);
    if (added_by_content.count(a.content)) bad(path + ".content", quote(a.content) + " is listed twice");
    if (!seen_ids.emplace(a.id, i).second)
      bad(path + ".id", std::to_string(a.id) + " is also the id of added_tokens[" + std::to_string(seen_ids[a.id]) + "]");
    added_by_content.emplace(a.content, static_cast<int>(added.size()));
    added.push_back(a);
  }
  index_added();

  spec.vocab.clear();
  spec.merges.clear();
  spec.added_tokens.clear();
  components = std::move(spec);
}

void BpeTokenizer::Impl::check_added(const AddedToken& a, const std::string& path) const {
  if (a.content.empty()) bad(path + ".content", "must not be empty");
  if (const size_t off = unicode::find_invalid_utf8(a.content); off != unicode::kValid)
    bad(path + ".content", "invalid UTF-8 at byte " + std::to_string(off));
  if (a.id < 0) bad(path + ".id", "negative id " + std::to_string(a.id));
  if (a.id > kMaxId) bad(path + ".id", "id " + std::to_string(a.id) + " is above the supported maximum " + std::to_string(kMaxId));
  if (auto it = model_ids.find(a.content); it != model_ids.end() && it->second != a.id)
    bad(path + ".id", std::to_string(a.id) + " differs from the id " + std::to_string(it->second) + " of " +
                          quote(a.content) + " in model.vocab");
  if (a.id < static_cast<int32_t>(in_model.size()) && in_model[a.id] && model_tokens[a.id] != a.content)
    bad(path + ".id", std::to_string(a.id) + " is the id of " + quote(model_tokens[a.id]) + " in model.vocab, not of " +
                          quote(a.content));
}

// Rebuilds everything derived from `added` (and the id-indexed decode tables).
void BpeTokenizer::Impl::index_added() {
  added_by_id.clear();
  raw_trie.clear();
  normalized_trie.clear();
  size = static_cast<int32_t>(model_tokens.size());
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& a = added[i];
    added_by_id[a.id] = static_cast<int>(i);
    size = std::max(size, a.id + 1);
    if (a.normalized) {
      const std::string pattern = components.nfc ? unicode::nfc(a.content) : a.content;
      normalized_trie.add(pattern, static_cast<int>(i));
    } else {
      raw_trie.add(a.content, static_cast<int>(i));
    }
  }
  decoded.assign(static_cast<size_t>(size), std::string());
  known.assign(static_cast<size_t>(size), 0);
  special.assign(static_cast<size_t>(size), 0);
  for (size_t id = 0; id < model_tokens.size(); ++id) {
    if (!in_model[id]) continue;
    decoded[id] = byte_level_decode(model_tokens[id]);
    known[id] = 1;
  }
  for (const AddedToken& a : added) {
    decoded[a.id] = byte_level_decode(a.content);
    known[a.id] = 1;
    special[a.id] = a.special ? 1 : 0;
  }
}

// HF's AddedVocabulary::find_matches: non-overlapping leftmost-longest matches; a single_word
// token inside a word is skipped; lstrip/rstrip widen the match over neighbouring White_Space.
void BpeTokenizer::Impl::split_added(std::string_view s, const TokenTrie& trie, std::vector<Segment>& out) const {
  size_t start_offset = 0, from = 0;
  while (true) {
    const TokenTrie::Match m = trie.find(s, from);
    if (m.token < 0) break;
    from = m.end;
    const AddedToken& a = added[m.token];
    size_t start = m.begin, stop = m.end;
    if (a.single_word && (ends_with_word(s.substr(0, start)) || starts_with_word(s.substr(stop)))) continue;
    if (a.lstrip) start = std::max(trailing_space_begin(s.substr(0, start)), start_offset);
    if (a.rstrip) stop += leading_space_end(s.substr(stop));
    if (start < start_offset) continue;  // inside the previous token's stripped whitespace
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, m.token});
    start_offset = from = stop;
  }
  if (start_offset < s.size()) out.push_back({start_offset, s.size(), -1});
}

void BpeTokenizer::Impl::encode_section(std::string_view raw, std::vector<int32_t>& out) const {
  if (!components.nfc || unicode::nfc_trivially_stable(raw)) {
    encode_normalized(raw, out);
    return;
  }
  const std::string normalized = unicode::nfc(raw);
  encode_normalized(normalized, out);
}

void BpeTokenizer::Impl::encode_normalized(std::string_view s, std::vector<int32_t>& out) const {
  if (normalized_trie.empty()) {
    encode_plain(s, out);
    return;
  }
  std::vector<Segment> segments;
  split_added(s, normalized_trie, segments);
  for (const Segment& g : segments) {
    if (g.token >= 0) out.push_back(added[g.token].id);
    else encode_plain(s.substr(g.begin, g.end - g.begin), out);
  }
}

// Pre-tokenizer (Split steps, in order) then BPE on each piece.
void BpeTokenizer::Impl::encode_plain(std::string_view s, std::vector<int32_t>& out) const {
  if (s.empty()) return;
  std::vector<Span> spans{{0, static_cast<uint32_t>(s.size())}}, next;
  for (const auto& splitter : splitters) {
    next.clear();
    for (const Span& sp : spans) {
      const size_t before = next.size();
      splitter->split(s.substr(sp.begin, sp.end - sp.begin), next);
      for (size_t k = before; k < next.size(); ++k) {
        next[k].begin += sp.begin;
        next[k].end += sp.begin;
      }
    }
    spans.swap(next);
  }
  for (const Span& sp : spans) encode_piece(s.substr(sp.begin, sp.end - sp.begin), out);
}

void BpeTokenizer::Impl::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_ids[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (components.ignore_merges) {
    thread_local std::string key;
    key.assign(piece);
    if (auto it = raw_vocab.find(key); it != raw_vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (!cache.enabled() || piece.size() >= PieceCache::kMaxPieceBytes) {
    merge_piece(piece, out);
    return;
  }
  thread_local std::string key;
  key.assign(piece);
  const size_t h = std::hash<std::string>{}(key);
  if (cache.lookup(key, h, out)) return;
  const size_t before = out.size();
  merge_piece(piece, out);
  cache.insert(key, h, out.data() + before, out.size() - before);
}

// HF's Word::merge_all: repeatedly apply the pair of lowest merge rank (the leftmost of equal
// ranks), with a heap of candidate pairs whose stale entries are skipped when popped.
void BpeTokenizer::Impl::merge_piece(std::string_view piece, std::vector<int32_t>& out) const {
  thread_local BpeScratch w;
  const int32_t n = static_cast<int32_t>(piece.size());
  w.ids.resize(n);
  w.prev.resize(n);
  w.next.resize(n);
  w.heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    w.ids[i] = byte_ids[static_cast<unsigned char>(piece[i])];
    w.prev[i] = i - 1;
    w.next[i] = i + 1;
  }
  const auto consider = [&](int32_t pos, bool keep_heap) {
    const int32_t right = w.next[pos];
    if (right >= n) return;
    if (const MergeMap::Entry* e = merge_map.find(w.ids[pos], w.ids[right])) {
      w.heap.push_back({e->rank, pos, w.ids[pos], w.ids[right], e->id});
      if (keep_heap) std::push_heap(w.heap.begin(), w.heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i, false);
  std::make_heap(w.heap.begin(), w.heap.end());
  while (!w.heap.empty()) {
    std::pop_heap(w.heap.begin(), w.heap.end());
    const BpeScratch::Candidate c = w.heap.back();
    w.heap.pop_back();
    // Stale when the left symbol was merged away (-1) or either side has changed since.
    if (w.ids[c.pos] != c.left) continue;
    const int32_t right = w.next[c.pos];
    if (right >= n || w.ids[right] != c.right) continue;
    w.ids[c.pos] = c.merged;
    w.ids[right] = -1;
    w.next[c.pos] = w.next[right];
    if (w.next[right] < n) w.prev[w.next[right]] = c.pos;
    if (w.prev[c.pos] >= 0) consider(w.prev[c.pos], true);
    consider(c.pos, true);
  }
  for (int32_t i = 0; i < n; i = w.next[i]) out.push_back(w.ids[i]);
}

// =============================================================================================

BpeTokenizer BpeTokenizer::load(const std::string& path, const BpeOptions& options) {
  return BpeTokenizer(parse_tokenizer_json(read_file(path), path), path, options);
}

BpeTokenizer::BpeTokenizer(BpeSpec spec, std::string name, const BpeOptions& options)
    : impl_(std::make_unique<Impl>(std::move(name), options)) {
  impl_->build(std::move(spec));
}

BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  if (text.size() > UINT32_MAX) fail("encode: the text has ", text.size(), " bytes; at most 4 GiB - 1 are supported");
  if (const size_t off = unicode::find_invalid_utf8(text); off != unicode::kValid)
    fail("encode: the text is not valid UTF-8: byte ", off, " (0x", std::hex,
         static_cast<int>(static_cast<unsigned char>(text[off])), std::dec,
         ") starts no well-formed sequence; sanitize_utf8() replaces such bytes by U+FFFD");
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (impl_->raw_trie.empty()) {
    impl_->encode_section(text, out);
    return out;
  }
  std::vector<Segment> segments;
  impl_->split_added(text, impl_->raw_trie, segments);
  for (const Segment& g : segments) {
    if (g.token >= 0) out.push_back(impl_->added[g.token].id);
    else impl_->encode_section(text.substr(g.begin, g.end - g.begin), out);
  }
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= impl_->size || !impl_->known[id])
      fail(impl_->name, ": decode: id ", id, " (position ", i, ") is not a token of this vocabulary (size ",
           impl_->size, ")");
    if (skip_special && impl_->special[id]) continue;
    bytes += impl_->decoded[id];
  }
  return unicode::sanitize_utf8(bytes);
}

std::optional<int32_t> BpeTokenizer::find_token(std::string_view content) const {
  const std::string key(content);
  if (auto it = impl_->added_by_content.find(key); it != impl_->added_by_content.end())
    return impl_->added[it->second].id;
  if (auto it = impl_->model_ids.find(key); it != impl_->model_ids.end()) return it->second;
  return std::nullopt;
}

int32_t BpeTokenizer::token_id(std::string_view content) const {
  if (auto id = find_token(content)) return *id;
  fail(impl_->name, ": no token ", quote(content), " in the vocabulary (", impl_->size,
       " ids); action tokens must first be added with add_special_tokens()");
}

std::string BpeTokenizer::token_content(int32_t id) const {
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  if (id >= 0 && id < static_cast<int32_t>(impl_->in_model.size()) && impl_->in_model[id]) return impl_->model_tokens[id];
  fail(impl_->name, ": id ", id, " is not a token of this vocabulary (size ", impl_->size, ")");
}

int32_t BpeTokenizer::vocab_size() const { return impl_->size; }
const std::vector<AddedToken>& BpeTokenizer::added_tokens() const { return impl_->added; }
const std::string& BpeTokenizer::name() const { return impl_->name; }

std::string BpeTokenizer::split_engine() const {
  std::string s;
  for (const auto& sp : impl_->splitters) s += (s.empty() ? "" : "+") + std::string(sp->engine());
  return s.empty() ? "none" : s;
}

std::vector<int32_t> BpeTokenizer::add_special_tokens(const std::vector<std::string>& names) {
  Impl& m = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(names.size());
  int32_t next_id = m.size;
  const size_t before = m.added.size();
  try {
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string& name = names[i];
      if (auto it = m.added_by_content.find(name); it != m.added_by_content.end()) {
        ids.push_back(m.added[it->second].id);
        continue;
      }
      AddedToken a;
      a.content = name;
      a.special = true;
      a.normalized = false;
      auto in_model = m.model_ids.find(name);
      a.id = in_model != m.model_ids.end() ? in_model->second : next_id++;
      m.check_added(a, "add_special_tokens: names[" + std::to_string(i) + "]");
      m.added_by_content.emplace(a.content, static_cast<int>(m.added.size()));
      m.added.push_back(a);
      ids.push_back(a.id);
    }
  } catch (...) {  // leave the tokenizer as it was
    for (size_t k = before; k < m.added.size(); ++k) m.added_by_content.erase(m.added[k].content);
    m.added.resize(before);
    throw;
  }
  m.index_added();
  return ids;
}

BpeSpec BpeTokenizer::spec() const {
  BpeSpec s = impl_->components;
  s.vocab.reserve(impl_->model_ids.size());
  for (size_t id = 0; id < impl_->model_tokens.size(); ++id)
    if (impl_->in_model[id]) s.vocab.emplace_back(impl_->model_tokens[id], static_cast<int32_t>(id));
  s.merges.reserve(impl_->merges.size());
  for (const auto& [a, b] : impl_->merges) s.merges.emplace_back(impl_->model_tokens[a], impl_->model_tokens[b]);
  s.added_tokens = impl_->added;
  return s;
}

void BpeTokenizer::write_json(const std::string& path) const { write_file_atomic(path, tokenizer_json_text(spec())); }

}  // namespace conductor
