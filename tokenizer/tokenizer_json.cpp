// Reading and writing HF tokenizer.json files (the supported subset, see bpe_tokenizer.h).
// Structural checks live here (types, known fields, supported kinds); the consistency of the
// vocabulary, merges and added tokens is checked when a BpeTokenizer is built from the spec.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <initializer_list>
#include <optional>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/json_reader.h"

namespace conductor {
namespace {

using tokenizer_json::describe;
using tokenizer_json::quote;

// The BPE-specific parts; the generic field access is tokenizer_json::Reader.
class Reader : public tokenizer_json::Reader {
 public:
  using tokenizer_json::Reader::Reader;

  // A ByteLevel component; HF's defaults for absent flags are all true.
  ByteLevelFlags byte_level(const json& v, const std::string& path) const {
    fields(v, path, {"type", "add_prefix_space", "trim_offsets", "use_regex"});
    ByteLevelFlags f;
    f.add_prefix_space = boolean(v, path, "add_prefix_space", true);
    f.trim_offsets = boolean(v, path, "trim_offsets", true);
    f.use_regex = boolean(v, path, "use_regex", true);
    return f;
  }

  bool normalizer(const json& v, const std::string& path) const {
    if (v.is_null()) return false;
    const std::string t = type(v, path);
    if (t == "NFC") {
      fields(v, path, {"type"});
      return true;
    }
    if (t == "Sequence") {
      fields(v, path, {"type", "normalizers"});
      const json& list = need(v, path, "normalizers");
      if (!list.is_array()) bad(path + ".normalizers", "expected an array, found " + describe(list));
      bool nfc = false;
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string p = path + ".normalizers[" + std::to_string(i) + "]";
        if (list[i].is_null()) bad(p, "expected a normalizer, found null");
        nfc = normalizer(list[i], p) || nfc;  // NFC is idempotent: NFC twice is NFC
      }
      return nfc;
    }
    bad(path + ".type", quote(t) + " is not supported (supported: NFC, a Sequence of NFC, or null)");
  }

  void split(const json& v, const std::string& path, BpeSpec& spec) const {
    fields(v, path, {"type", "pattern", "behavior", "invert"});
    const json& pattern = need(v, path, "pattern");
    fields(pattern, path + ".pattern", {"Regex", "String"});
    if (find(pattern, "String"))
      bad(path + ".pattern.String", "String patterns are not supported (only Regex, as in Qwen2 files)");
    spec.split_patterns.push_back(string(pattern, path + ".pattern", "Regex"));
    const std::string behavior = string(v, path, "behavior");
    if (behavior != "Isolated")
      bad(path + ".behavior", quote(behavior) + " is not supported (only \"Isolated\")");
    if (boolean(v, path, "invert", false)) bad(path + ".invert", "true is not supported (only false)");
  }

  void final_byte_level(const json& v, const std::string& path, BpeSpec& spec) const {
    spec.pre_byte_level = byte_level(v, path);
    if (spec.pre_byte_level.add_prefix_space)
      bad(path + ".add_prefix_space", "true (or absent, HF's default) is not supported: Qwen2 files use false");
    if (spec.pre_byte_level.use_regex)
      bad(path + ".use_regex",
          "true (or absent, HF's default) is not supported: the GPT-2 split is not implemented; Qwen2 files "
          "split with a Split(Regex) step and set use_regex false");
  }

  void pre_tokenizer(const json& v, const std::string& path, BpeSpec& spec) const {
    if (v.is_null()) bad(path, "missing: a byte-level BPE needs a ByteLevel pre-tokenizer");
    const std::string t = type(v, path);
    if (t == "ByteLevel") {
      final_byte_level(v, path, spec);
      return;
    }
    if (t != "Sequence")
      bad(path + ".type", quote(t) + " is not supported (supported: Sequence[Split..., ByteLevel] or ByteLevel)");
    fields(v, path, {"type", "pretokenizers"});
    const json& list = need(v, path, "pretokenizers");
    if (!list.is_array() || list.empty())
      bad(path + ".pretokenizers", "expected a non-empty array, found " + describe(list));
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = path + ".pretokenizers[" + std::to_string(i) + "]";
      const std::string ti = type(list[i], p);
      const bool last = i + 1 == list.size();
      if (ti == "Split" && !last) {
        split(list[i], p, spec);
      } else if (ti == "ByteLevel" && last) {
        final_byte_level(list[i], p, spec);
      } else if (ti == "Split" || ti == "ByteLevel") {
        bad(p + ".type", quote(ti) + " here is not supported: the sequence must be Split steps then one ByteLevel");
      } else {
        bad(p + ".type", quote(ti) + " is not supported (supported: Split, then ByteLevel last)");
      }
    }
  }

  void model(const json& v, const std::string& path, BpeSpec& spec) const {
    if (!v.is_object()) bad(path, "expected an object, found " + describe(v));
    const std::string t = string(v, path, "type");
    if (t != "BPE") bad(path + ".type", quote(t) + " is not supported (only BPE)");
    fields(v, path,
           {"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
            "byte_fallback", "ignore_merges", "vocab", "merges"});
    if (const json* d = find(v, "dropout"); d && !d->is_null())
      bad(path + ".dropout", "must be null (BPE dropout makes encoding random), found " + describe(*d));
    if (const json* u = find(v, "unk_token"); u && !u->is_null()) {
      if (!u->is_string()) bad(path + ".unk_token", "expected a string or null, found " + describe(*u));
      spec.unk_token = u->get<std::string>();
    }
    for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const json* a = find(v, affix);
      if (a && !a->is_null() && !(a->is_string() && a->get<std::string>().empty()))
        bad(path + "." + affix, "must be \"\" or null (byte-level BPE uses none), found " + describe(*a));
    }
    spec.fuse_unk = boolean(v, path, "fuse_unk", false);
    if (boolean(v, path, "byte_fallback", false))
      bad(path + ".byte_fallback", "true is not supported (byte-level BPE never needs it)");
    spec.ignore_merges = boolean(v, path, "ignore_merges", false);

    const json& vocab = need(v, path, "vocab");
    if (!vocab.is_object()) bad(path + ".vocab", "expected an object {token: id}, found " + describe(vocab));
    spec.vocab.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      spec.vocab.emplace_back(it.key(), id(it.value(), path + ".vocab[" + quote(it.key()) + "]"));
    }

    const json& merges = need(v, path, "merges");
    if (!merges.is_array()) bad(path + ".merges", "expected an array, found " + describe(merges));
    spec.merges.reserve(merges.size());
    spec.merges_as_pairs = merges.empty() || merges[0].is_array();
    for (size_t i = 0; i < merges.size(); ++i) {
      const json& m = merges[i];
      const std::string p = path + ".merges[" + std::to_string(i) + "]";
      if (spec.merges_as_pairs) {
        if (!m.is_array() || m.size() != 2 || !m[0].is_string() || !m[1].is_string())
          bad(p, "expected a pair of strings [a, b] like the first merge, found " + describe(m) +
                     (m.is_array() ? " of " + std::to_string(m.size()) + " items" : ""));
        spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        if (!m.is_string()) bad(p, "expected a string \"a b\" like the first merge, found " + describe(m));
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
          bad(p, "expected two tokens separated by one space, found " + quote(s));
        spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      }
    }
  }

};

// Indents every line but the first of `block` by `spaces`.
std::string indent_tail(const std::string& block, int spaces) {
  std::string out;
  out.reserve(block.size() + 64);
  for (char c : block) {
    out.push_back(c);
    if (c == '\n') out.append(spaces, ' ');
  }
  return out;
}

nlohmann::ordered_json byte_level_json(const ByteLevelFlags& f) {
  nlohmann::ordered_json j;
  j["type"] = "ByteLevel";
  j["add_prefix_space"] = f.add_prefix_space;
  j["trim_offsets"] = f.trim_offsets;
  j["use_regex"] = f.use_regex;
  return j;
}

}  // namespace

BpeSpec parse_tokenizer_json(const std::string& text, const std::string& name) {
  const json doc = parse_json(text, name);
  const Reader r(name);
  r.fields(doc, "(top level)",
           {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor",
            "decoder", "model"});
  BpeSpec spec;
  if (const json* v = r.find(doc, "version")) {
    if (!v->is_string()) r.bad("version", "expected a string, found " + describe(*v));
    spec.version = v->get<std::string>();
  }
  for (const char* key : {"truncation", "padding"})
    if (const json* v = r.find(doc, key); v && !v->is_null())
      r.bad(key, std::string("must be null: encode() never ") + (key[0] == 't' ? "truncates" : "pads") +
                     " (found " + describe(*v) + ")");
  if (const json* v = r.find(doc, "normalizer")) spec.nfc = r.normalizer(*v, "normalizer");
  else spec.nfc = false;
  r.pre_tokenizer(r.need(doc, "", "pre_tokenizer"), "pre_tokenizer", spec);
  if (const json* v = r.find(doc, "post_processor"); v && !v->is_null()) {
    const std::string t = r.type(*v, "post_processor");
    if (t != "ByteLevel")
      r.bad("post_processor.type", quote(t) + " is not supported (only ByteLevel or null: encode() adds no special tokens)");
    spec.post_processor = r.byte_level(*v, "post_processor");
  }
  const json& decoder = r.need(doc, "", "decoder");
  if (decoder.is_null()) r.bad("decoder", "missing: a byte-level BPE needs the ByteLevel decoder");
  const std::string dt = r.type(decoder, "decoder");
  if (dt != "ByteLevel") r.bad("decoder.type", quote(dt) + " is not supported (only ByteLevel)");
  spec.decoder = r.byte_level(decoder, "decoder");
  r.model(r.need(doc, "", "model"), "model", spec);
  if (const json* v = r.find(doc, "added_tokens")) spec.added_tokens = r.added_tokens(*v, "added_tokens");
  return spec;
}

std::string tokenizer_json_text(const BpeSpec& spec) {
  using ojson = nlohmann::ordered_json;
  std::string out;
  out.reserve(64 + spec.vocab.size() * 24 + spec.merges.size() * 28);
  out += "{\n  \"version\": " + quote(spec.version) + ",\n  \"truncation\": null,\n  \"padding\": null,\n";

  std::vector<const AddedToken*> added;
  for (const auto& a : spec.added_tokens) added.push_back(&a);
  std::sort(added.begin(), added.end(), [](const AddedToken* a, const AddedToken* b) { return a->id < b->id; });
  out += "  \"added_tokens\": [";
  for (size_t i = 0; i < added.size(); ++i) {
    ojson t;
    t["id"] = added[i]->id;
    t["content"] = added[i]->content;
    t["single_word"] = added[i]->single_word;
    t["lstrip"] = added[i]->lstrip;
    t["rstrip"] = added[i]->rstrip;
    t["normalized"] = added[i]->normalized;
    t["special"] = added[i]->special;
    out += (i ? ",\n    " : "\n    ") + indent_tail(t.dump(2), 4);
  }
  out += added.empty() ? "],\n" : "\n  ],\n";

  ojson normalizer = nullptr;
  if (spec.nfc) normalizer = ojson{{"type", "NFC"}};
  ojson pre;
  if (spec.split_patterns.empty()) {
    pre = byte_level_json(spec.pre_byte_level);
  } else {
    pre["type"] = "Sequence";
    pre["pretokenizers"] = ojson::array();
    for (const auto& p : spec.split_patterns) {
      ojson s;
      s["type"] = "Split";
      s["pattern"] = ojson{{"Regex", p}};
      s["behavior"] = "Isolated";
      s["invert"] = false;
      pre["pretokenizers"].push_back(std::move(s));
    }
    pre["pretokenizers"].push_back(byte_level_json(spec.pre_byte_level));
  }
  ojson post = nullptr;
  if (spec.post_processor) post = byte_level_json(*spec.post_processor);
  out += "  \"normalizer\": " + indent_tail(normalizer.dump(2), 2) + ",\n";
  out += "  \"pre_tokenizer\": " + indent_tail(pre.dump(2), 2) + ",\n";
  out += "  \"post_processor\": " + indent_tail(post.dump(2), 2) + ",\n";
  out += "  \"decoder\": " + indent_tail(byte_level_json(spec.decoder).dump(2), 2) + ",\n";

  out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n";
  out += "    \"unk_token\": " + (spec.unk_token ? quote(*spec.unk_token) : std::string("null")) + ",\n";
  out += "    \"continuing_subword_prefix\": \"\",\n    \"end_of_word_suffix\": \"\",\n";
  out += std::string("    \"fuse_unk\": ") + (spec.fuse_unk ? "true" : "false") + ",\n";
  out += "    \"byte_fallback\": false,\n";
  out += std::string("    \"ignore_merges\": ") + (spec.ignore_merges ? "true" : "false") + ",\n";
  std::vector<const std::pair<std::string, int32_t>*> vocab;
  for (const auto& e : spec.vocab) vocab.push_back(&e);
  std::sort(vocab.begin(), vocab.end(), [](auto* a, auto* b) { return a->second < b->second; });
  out += "    \"vocab\": {";
  for (size_t i = 0; i < vocab.size(); ++i)
    out += (i ? ",\n      " : "\n      ") + quote(vocab[i]->first) + ": " + std::to_string(vocab[i]->second);
  out += vocab.empty() ? "},\n" : "\n    },\n";
  out += "    \"merges\": [";
  for (size_t i = 0; i < spec.merges.size(); ++i) {
    out += i ? ",\n      " : "\n      ";
    const auto& [a, b] = spec.merges[i];
    out += spec.merges_as_pairs ? "[" + quote(a) + ", " + quote(b) + "]" : quote(a + " " + b);
  }
  out += spec.merges.empty() ? "]\n" : "\n    ]\n";
  out += "  }\n}\n";
  return out;
}

}  // namespace conductor
