#include "tokenizer/wordpiece.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/json_reader.h"
#include "tokenizer/unicode.h"

namespace conductor {
namespace {

using tokenizer_json::describe;
using tokenizer_json::quote;

struct CharRange {
  char32_t first, last;
};
struct LowerEntry {
  char32_t cp;
  char32_t lower[3];
};
#include "tokenizer/bert_char_tables.inc"

template <std::size_t N>
bool in_ranges(const CharRange (&table)[N], char32_t cp) {
  const CharRange* end = table + N;
  const CharRange* it = std::upper_bound(table, end, cp, [](char32_t c, const CharRange& r) { return c < r.first; });
  return it != table && cp <= (it - 1)->last;
}

const LowerEntry* find_lower(char32_t cp) {
  const LowerEntry* end = kBertLower + sizeof(kBertLower) / sizeof(kBertLower[0]);
  const LowerEntry* it = std::lower_bound(kBertLower, end, cp, [](const LowerEntry& e, char32_t c) { return e.cp < c; });
  return it != end && it->cp == cp ? it : nullptr;
}

// HF's is_chinese_char: the CJK Unified Ideographs blocks and their extensions, compatibility
// ideographs (not Hangul, Hiragana or Katakana).
bool is_cjk(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

std::string nfd(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()), &out,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
  CONDUCTOR_CHECK(n >= 0, "utf8proc_map: ", utf8proc_errmsg(n));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> guard(out, &std::free);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

bool has_non_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

void check_utf8(std::string_view text) {
  const std::size_t bad = unicode::find_invalid_utf8(text);
  if (bad != unicode::kValid)
    fail("text is not valid UTF-8 at byte offset ", bad, " (repair it first, e.g. with sanitize_utf8)");
}

// The single-sequence post-processor: [CLS] $A [SEP] with type id 0 everywhere. Returns the ids the
// file gives the two tokens (checked against the vocabulary by the caller).
std::pair<int32_t, int32_t> read_post_processor(const tokenizer_json::Reader& r, const json& v, WordPieceSpec& spec) {
  const std::string path = "post_processor";
  if (v.is_null()) r.bad(path, "missing: a sentence encoder needs [CLS] $A [SEP] (TemplateProcessing or BertProcessing)");
  const std::string t = r.type(v, path);
  if (t == "BertProcessing") {
    r.fields(v, path, {"type", "sep", "cls"});
    int32_t ids[2];
    for (int k = 0; k < 2; ++k) {
      const char* key = k == 0 ? "cls" : "sep";
      const json& pair = r.need(v, path, key);
      const std::string p = path + "." + key;
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string())
        r.bad(p, "expected [token, id], found " + describe(pair));
      ids[k] = r.id(pair[1], p + "[1]");
      (k == 0 ? spec.cls_token : spec.sep_token) = pair[0].get<std::string>();
    }
    return {ids[0], ids[1]};
  }
  if (t != "TemplateProcessing")
    r.bad(path + ".type", quote(t) + " is not supported (TemplateProcessing \"[CLS] $A [SEP]\" or BertProcessing)");
  r.fields(v, path, {"type", "single", "pair", "special_tokens"});
  const json& single = r.need(v, path, "single");
  const std::string sp = path + ".single";
  auto special = [&](const json& item, const std::string& p) -> std::string {
    r.fields(item, p, {"SpecialToken"});
    const json& st = r.need(item, p, "SpecialToken");
    r.fields(st, p + ".SpecialToken", {"id", "type_id"});
    const json& type_id = r.need(st, p + ".SpecialToken", "type_id");
    if (type_id != 0) r.bad(p + ".SpecialToken.type_id", "expected 0, found " + describe(type_id));
    return r.string(st, p + ".SpecialToken", "id");
  };
  if (!single.is_array() || single.size() != 3)
    r.bad(sp, "expected the template [SpecialToken, Sequence A, SpecialToken] ([CLS] $A [SEP]), found " + describe(single));
  spec.cls_token = special(single[0], sp + "[0]");
  {
    const std::string p = sp + "[1]";
    r.fields(single[1], p, {"Sequence"});
    const json& seq = r.need(single[1], p, "Sequence");
    r.fields(seq, p + ".Sequence", {"id", "type_id"});
    if (r.string(seq, p + ".Sequence", "id") != "A") r.bad(p + ".Sequence.id", "expected \"A\"");
    if (r.need(seq, p + ".Sequence", "type_id") != 0) r.bad(p + ".Sequence.type_id", "expected 0");
  }
  spec.sep_token = special(single[2], sp + "[2]");
  // The ids the template inserts: special_tokens[name].ids.
  const json& tokens = r.need(v, path, "special_tokens");
  int32_t ids[2];
  for (int k = 0; k < 2; ++k) {
    const std::string& name = k == 0 ? spec.cls_token : spec.sep_token;
    const std::string p = path + ".special_tokens[" + quote(name) + "]";
    if (!tokens.is_object() || !tokens.contains(name)) r.bad(p, "missing (the template uses it)");
    const json& entry = tokens.at(name);
    r.fields(entry, p, {"id", "ids", "tokens"});
    const json& list = r.need(entry, p, "ids");
    const json& toks = r.need(entry, p, "tokens");
    if (!list.is_array() || list.size() != 1 || !toks.is_array() || toks.size() != 1 || toks[0] != name)
      r.bad(p, "expected one id and the token itself, found ids " + list.dump() + ", tokens " + toks.dump());
    ids[k] = r.id(list[0], p + ".ids[0]");
  }
  return {ids[0], ids[1]};
}

}  // namespace

// ---- construction -------------------------------------------------------------------------------

WordPieceTokenizer::WordPieceTokenizer(WordPieceSpec spec, std::string name) : spec_(std::move(spec)), name_(std::move(name)) {
  if (spec_.vocab.empty()) fail(name_, ": the vocabulary is empty");
  ids_.reserve(spec_.vocab.size() * 2);
  for (std::size_t i = 0; i < spec_.vocab.size(); ++i) {
    const std::string& t = spec_.vocab[i];
    if (t.empty()) fail(name_, ": vocabulary id ", i, " is the empty string");
    if (unicode::find_invalid_utf8(t) != unicode::kValid) fail(name_, ": vocabulary id ", i, " is not valid UTF-8");
    auto [it, inserted] = ids_.emplace(t, static_cast<int32_t>(i));
    if (!inserted) fail(name_, ": token ", quote(t), " has two ids, ", it->second, " and ", i);
    longest_token_bytes_ = std::max(longest_token_bytes_, t.size());
  }
  if (spec_.max_input_chars_per_word <= 0)
    fail(name_, ": max_input_chars_per_word must be positive, got ", spec_.max_input_chars_per_word);
  for (std::size_t i = 0; i < spec_.added_tokens.size(); ++i) {
    const AddedToken& a = spec_.added_tokens[i];
    const std::string p = name_ + ": added_tokens[" + std::to_string(i) + "]";
    if (a.content.empty()) fail(p, ": empty content");
    if (a.normalized)
      fail(p, " (", quote(a.content), "): normalized true is not supported (special tokens of BERT files are matched in the raw text)");
    if (a.single_word) fail(p, " (", quote(a.content), "): single_word true is not supported");
    auto it = ids_.find(a.content);
    if (it == ids_.end() || it->second != a.id)
      fail(p, ": ", quote(a.content), " with id ", a.id, " is not that vocabulary entry (",
           it == ids_.end() ? std::string("absent from the vocabulary") : "its id there is " + std::to_string(it->second),
           "); added tokens outside the vocabulary are not supported");
  }
  auto need = [&](const std::string& token, const char* role) {
    auto it = ids_.find(token);
    if (it == ids_.end()) fail(name_, ": the ", role, " token ", quote(token), " is not in the vocabulary");
    return it->second;
  };
  cls_id_ = need(spec_.cls_token, "CLS");
  sep_id_ = need(spec_.sep_token, "SEP");
  unk_id_ = need(spec_.unk_token, "unknown");
  pad_id_ = need(spec_.pad_token, "padding");
}

WordPieceTokenizer WordPieceTokenizer::load_json(const std::string& path) {
  const json doc = parse_json(read_file(path), path);
  const tokenizer_json::Reader r(path);
  r.fields(doc, "(top level)",
           {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor",
            "decoder", "model"});
  // truncation and padding are what tokenizer(...) does without arguments; sentence-transformers
  // always passes its own (truncate to max_seq_length, pad to the longest), and so does this code.
  WordPieceSpec spec;
  if (const json* v = r.find(doc, "added_tokens")) spec.added_tokens = r.added_tokens(*v, "added_tokens");

  const json* norm = r.find(doc, "normalizer");
  if (norm == nullptr || norm->is_null()) {
    spec.clean_text = spec.handle_chinese_chars = spec.lowercase = false;
    spec.strip_accents = false;
  } else {
    const std::string t = r.type(*norm, "normalizer");
    if (t != "BertNormalizer") r.bad("normalizer.type", quote(t) + " is not supported (only BertNormalizer or null)");
    r.fields(*norm, "normalizer", {"type", "clean_text", "handle_chinese_chars", "strip_accents", "lowercase"});
    spec.clean_text = r.boolean(*norm, "normalizer", "clean_text", true);
    spec.handle_chinese_chars = r.boolean(*norm, "normalizer", "handle_chinese_chars", true);
    spec.lowercase = r.boolean(*norm, "normalizer", "lowercase", true);
    if (const json* s = r.find(*norm, "strip_accents"); s != nullptr && !s->is_null()) {
      if (!s->is_boolean()) r.bad("normalizer.strip_accents", "expected true, false or null, found " + describe(*s));
      spec.strip_accents = s->get<bool>();
    }
  }
  const json& pre = r.need(doc, "", "pre_tokenizer");
  if (pre.is_null()) r.bad("pre_tokenizer", "must be BertPreTokenizer, found null");
  if (const std::string t = r.type(pre, "pre_tokenizer"); t != "BertPreTokenizer")
    r.bad("pre_tokenizer.type", quote(t) + " is not supported (only BertPreTokenizer)");
  r.fields(pre, "pre_tokenizer", {"type"});
  const auto [cls_id, sep_id] = read_post_processor(r, r.need(doc, "", "post_processor"), spec);
  if (const json* d = r.find(doc, "decoder"); d != nullptr && !d->is_null()) {
    if (const std::string t = r.type(*d, "decoder"); t != "WordPiece")
      r.bad("decoder.type", quote(t) + " is not supported (WordPiece or null)");
  }

  const json& model = r.need(doc, "", "model");
  if (const std::string t = r.type(model, "model"); t != "WordPiece")
    r.bad("model.type", quote(t) + " is not supported: this tokenizer implements WordPiece (BPE files load with "
                                   "BpeTokenizer)");
  r.fields(model, "model", {"type", "unk_token", "continuing_subword_prefix", "max_input_chars_per_word", "vocab"});
  spec.unk_token = r.string(model, "model", "unk_token");
  spec.continuing_subword_prefix = r.string(model, "model", "continuing_subword_prefix");
  const json& max_chars = r.need(model, "model", "max_input_chars_per_word");
  if (!max_chars.is_number_integer() || max_chars.get<int64_t>() <= 0)
    r.bad("model.max_input_chars_per_word", "expected a positive integer, found " + describe(max_chars));
  spec.max_input_chars_per_word = max_chars.get<int64_t>();
  const json& vocab = r.need(model, "model", "vocab");
  if (!vocab.is_object() || vocab.empty()) r.bad("model.vocab", "expected a non-empty object {token: id}, found " + describe(vocab));
  spec.vocab.assign(vocab.size(), std::string());
  std::vector<bool> seen(vocab.size(), false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const std::string p = "model.vocab[" + quote(it.key()) + "]";
    const int32_t id = r.id(it.value(), p);
    if (static_cast<std::size_t>(id) >= vocab.size())
      r.bad(p, "id " + std::to_string(id) + " is outside [0, " + std::to_string(vocab.size()) +
                   "): the ids must be 0 .. size - 1 without gaps");
    if (seen[id]) r.bad(p, "id " + std::to_string(id) + " is also the id of " + quote(spec.vocab[id]));
    seen[id] = true;
    spec.vocab[id] = it.key();
  }
  // The padding token, when the file names one (else BERT's "[PAD]").
  if (const json* pad = r.find(doc, "padding"); pad != nullptr && pad->is_object() && pad->contains("pad_token")) {
    if (!pad->at("pad_token").is_string()) r.bad("padding.pad_token", "expected a string, found " + describe(pad->at("pad_token")));
    spec.pad_token = pad->at("pad_token").get<std::string>();
  }
  WordPieceTokenizer tok(std::move(spec), path);
  if (cls_id != tok.cls_id() || sep_id != tok.sep_id())
    r.bad("post_processor", "inserts " + quote(tok.spec().cls_token) + " as id " + std::to_string(cls_id) + " and " +
                                quote(tok.spec().sep_token) + " as id " + std::to_string(sep_id) +
                                ", but the vocabulary has them at " + std::to_string(tok.cls_id()) + " and " +
                                std::to_string(tok.sep_id()));
  return tok;
}

WordPieceTokenizer WordPieceTokenizer::load_vocab(const std::string& vocab_path, const std::string& config_path) {
  WordPieceSpec spec;
  {
    const std::string text = read_file(vocab_path);
    std::size_t begin = 0;
    while (begin < text.size()) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      spec.vocab.emplace_back(text, begin, end - begin);  // transformers strips the "\n" only
      begin = end + 1;
    }
  }
  std::string mask_token = "[MASK]";
  if (!config_path.empty() && std::filesystem::exists(config_path)) {
    const json j = parse_json(read_file(config_path), config_path);
    const tokenizer_json::Reader r(config_path);
    if (!j.is_object()) r.bad("(top level)", "expected an object, found " + describe(j));
    spec.lowercase = r.boolean(j, "", "do_lower_case", true);
    spec.handle_chinese_chars = r.boolean(j, "", "tokenize_chinese_chars", true);
    if (const json* s = r.find(j, "strip_accents"); s != nullptr && !s->is_null()) {
      if (!s->is_boolean()) r.bad("strip_accents", "expected true, false or null, found " + describe(*s));
      spec.strip_accents = s->get<bool>();
    }
    if (!r.boolean(j, "", "do_basic_tokenize", true))
      r.bad("do_basic_tokenize", "false is not supported (the basic tokenizer always runs)");
    if (const json* s = r.find(j, "never_split"); s != nullptr && !s->is_null() && !(s->is_array() && s->empty()))
      r.bad("never_split", "is not supported (found " + describe(*s) + ")");
    auto token = [&](const char* key, std::string& out) {
      const json* v = r.find(j, key);
      if (v == nullptr || v->is_null()) return;
      if (v->is_object()) v = &r.need(*v, key, "content");
      if (!v->is_string()) r.bad(key, "expected a string, found " + describe(*v));
      out = v->get<std::string>();
    };
    token("unk_token", spec.unk_token);
    token("cls_token", spec.cls_token);
    token("sep_token", spec.sep_token);
    token("pad_token", spec.pad_token);
    token("mask_token", mask_token);
  }
  // transformers' conversion to a fast tokenizer makes the special tokens (present in the
  // vocabulary) added tokens matched in the raw text.
  std::vector<std::string> specials = {spec.pad_token, spec.unk_token, spec.cls_token, spec.sep_token, mask_token};
  for (std::size_t i = 0; i < spec.vocab.size(); ++i)
    if (std::find(specials.begin(), specials.end(), spec.vocab[i]) != specials.end()) {
      AddedToken a;
      a.id = static_cast<int32_t>(i);
      a.content = spec.vocab[i];
      spec.added_tokens.push_back(a);
    }
  return WordPieceTokenizer(std::move(spec), vocab_path);
}

WordPieceTokenizer WordPieceTokenizer::load_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path json_path = fs::path(dir) / "tokenizer.json";
  if (fs::exists(json_path)) return load_json(json_path.string());
  const fs::path vocab = fs::path(dir) / "vocab.txt";
  if (fs::exists(vocab)) return load_vocab(vocab.string(), (fs::path(dir) / "tokenizer_config.json").string());
  fail(dir, ": no tokenizer: neither tokenizer.json nor vocab.txt is present");
}

// ---- encoding -----------------------------------------------------------------------------------

std::string WordPieceTokenizer::normalize(std::string_view text) const {
  check_utf8(text);
  std::string s;
  s.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size();) {
    int len;
    const char32_t cp = unicode::decode_at(text, i, len);
    i += static_cast<std::size_t>(len);
    if (spec_.clean_text) {
      if (in_ranges(kBertControl, cp)) continue;
      if (unicode::is_white_space(cp)) {
        s.push_back(' ');
        continue;
      }
    }
    if (spec_.handle_chinese_chars && is_cjk(cp)) {
      s.push_back(' ');
      unicode::append_utf8(s, cp);
      s.push_back(' ');
      continue;
    }
    unicode::append_utf8(s, cp);
  }
  if (spec_.strip_accents.value_or(spec_.lowercase) && has_non_ascii(s)) {
    const std::string d = nfd(s);
    s.clear();
    for (std::size_t i = 0; i < d.size();) {
      int len;
      const char32_t cp = unicode::decode_at(d, i, len);
      if (!in_ranges(kBertNonSpacingMark, cp)) s.append(d, i, static_cast<std::size_t>(len));
      i += static_cast<std::size_t>(len);
    }
  }
  if (spec_.lowercase) {
    std::string lower;
    lower.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
      const auto b = static_cast<unsigned char>(s[i]);
      if (b < 0x80) {
        lower.push_back(b >= 'A' && b <= 'Z' ? static_cast<char>(b + 32) : static_cast<char>(b));
        ++i;
        continue;
      }
      int len;
      const char32_t cp = unicode::decode_at(s, i, len);
      if (const LowerEntry* e = find_lower(cp)) {
        for (char32_t c : e->lower)
          if (c != 0) unicode::append_utf8(lower, c);
      } else {
        lower.append(s, i, static_cast<std::size_t>(len));
      }
      i += static_cast<std::size_t>(len);
    }
    s.swap(lower);
  }
  return s;
}

std::vector<std::string> WordPieceTokenizer::pre_tokenize(std::string_view s) const {
  std::vector<std::string> words;
  std::string cur;
  for (std::size_t i = 0; i < s.size();) {
    int len;
    const char32_t cp = unicode::decode_at(s, i, len);
    if (unicode::is_white_space(cp) || in_ranges(kBertPunctuation, cp)) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
      if (!unicode::is_white_space(cp)) words.emplace_back(s.substr(i, static_cast<std::size_t>(len)));
    } else {
      cur.append(s.data() + i, static_cast<std::size_t>(len));
    }
    i += static_cast<std::size_t>(len);
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

void WordPieceTokenizer::word_pieces(std::string_view word, std::vector<int32_t>& out) const {
  int64_t chars = 0;
  for (char c : word) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  if (chars > spec_.max_input_chars_per_word) {
    out.push_back(unk_id_);
    return;
  }
  const std::size_t first = out.size();
  const std::string& prefix = spec_.continuing_subword_prefix;
  std::string key;
  std::size_t start = 0;
  while (start < word.size()) {
    const std::size_t head = start > 0 ? prefix.size() : 0;
    // The longest piece that can match: no vocabulary entry is longer than longest_token_bytes_.
    std::size_t end = word.size();
    if (longest_token_bytes_ < head + (end - start)) {
      end = start + (longest_token_bytes_ > head ? longest_token_bytes_ - head : 0);
      while (end > start && end < word.size() && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
    }
    int32_t found = -1;
    while (end > start) {
      key.assign(start > 0 ? prefix : std::string());
      key.append(word.data() + start, end - start);
      if (auto it = ids_.find(key); it != ids_.end()) {
        found = it->second;
        break;
      }
      do --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (found < 0) {  // some position matches no piece: the whole word is unknown
      out.resize(first);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  for (const std::string& word : pre_tokenize(normalize(text))) word_pieces(word, out);
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text) const {
  check_utf8(text);
  std::vector<int32_t> out;
  // Added tokens, leftmost match first, the longest at that position (HF's AddedVocabulary);
  // lstrip / rstrip swallow the White_Space next to the match.
  std::size_t pos = 0, stretch = 0;
  while (pos <= text.size() && !spec_.added_tokens.empty()) {
    const AddedToken* best = nullptr;
    std::size_t at = std::string_view::npos;
    for (const AddedToken& a : spec_.added_tokens) {
      const std::size_t f = text.find(a.content, pos);
      if (f == std::string_view::npos) continue;
      if (f < at || (f == at && a.content.size() > best->content.size())) {
        at = f;
        best = &a;
      }
    }
    if (best == nullptr) break;
    std::size_t left = at, right = at + best->content.size();
    if (best->lstrip)
      while (left > stretch && (text[left - 1] == ' ' || text[left - 1] == '\t' || text[left - 1] == '\n' || text[left - 1] == '\r'))
        --left;
    if (best->rstrip)
      while (right < text.size() && (text[right] == ' ' || text[right] == '\t' || text[right] == '\n' || text[right] == '\r'))
        ++right;
    encode_text(text.substr(stretch, left - stretch), out);
    out.push_back(best->id);
    pos = stretch = right;
  }
  encode_text(text.substr(stretch), out);
  return out;
}

std::vector<int32_t> WordPieceTokenizer::encode_for_model(std::string_view text, int64_t max_length) const {
  if (max_length < 2) fail(name_, ": max_length ", max_length, " leaves no room for [CLS] and [SEP] (at least 2)");
  std::vector<int32_t> ids = encode(text);
  if (static_cast<int64_t>(ids.size()) > max_length - 2) ids.resize(static_cast<std::size_t>(max_length - 2));
  ids.insert(ids.begin(), cls_id_);
  ids.push_back(sep_id_);
  return ids;
}

std::optional<int32_t> WordPieceTokenizer::find_token(std::string_view token) const {
  auto it = ids_.find(std::string(token));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

const std::string& WordPieceTokenizer::token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) fail(name_, ": token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  return spec_.vocab[static_cast<std::size_t>(id)];
}

}  // namespace conductor
