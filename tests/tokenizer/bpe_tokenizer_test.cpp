// BpeTokenizer on the checked-in fixture (a 1024-id byte-level BPE trained on
// tests/tokenizer/fixture/corpus.txt by `conductor tokenizer train`): every rule of the pipeline,
// round trips, added tokens, add_special_tokens, write_json, errors and thread safety.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <thread>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/test_util.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/regex_split.h"
#include "tokenizer/unicode.h"

namespace conductor {
namespace {

using testing::fixture_tokenizer;
using testing::fixture_tokenizer_path;
using Ids = std::vector<int32_t>;

const std::vector<std::string> kSpecials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

Ids concat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Ids of vocabulary strings, e.g. ids({"Ġworld"}).
Ids ids(const BpeTokenizer& tok, std::initializer_list<const char*> tokens) {
  Ids out;
  for (const char* t : tokens) out.push_back(tok.token_id(t));
  return out;
}

// ---- an independent reference: PCRE2 split + the textbook BPE loop on strings -------------

class ReferenceBpe {
 public:
  explicit ReferenceBpe(const BpeSpec& spec) {
    for (const auto& [token, id] : spec.vocab) vocab_[token] = id;
    for (size_t r = 0; r < spec.merges.size(); ++r) ranks_[spec.merges[r]] = static_cast<int>(r);
    int err;
    PCRE2_SIZE off;
    re_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(spec.split_patterns.at(0).c_str()), PCRE2_ZERO_TERMINATED,
                        PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  }
  ~ReferenceBpe() { pcre2_code_free(re_); }

  Ids encode(const std::string& raw) const {
    const std::string text = unicode::nfc(raw);
    Ids out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re_, nullptr);
    size_t offset = 0;
    while (offset < text.size() &&
           pcre2_match(re_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), offset, 0, md, nullptr) > 0) {
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      EXPECT_EQ(ov[0], offset) << "the Qwen2 pattern leaves no gaps";
      for (const std::string& t : bpe(text.substr(ov[0], ov[1] - ov[0]))) out.push_back(vocab_.at(t));
      offset = ov[1];
    }
    pcre2_match_data_free(md);
    return out;
  }

 private:
  // Repeatedly merge the adjacent pair of lowest rank, the leftmost one among equal ranks.
  std::vector<std::string> bpe(const std::string& piece) const {
    std::vector<std::string> symbols;
    for (const char c : piece) {
      std::string s;
      unicode::append_utf8(s, byte_to_unicode(static_cast<uint8_t>(c)));
      symbols.push_back(s);
    }
    while (symbols.size() > 1) {
      int best = -1, best_rank = INT32_MAX;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = ranks_.find({symbols[i], symbols[i + 1]});
        if (it != ranks_.end() && it->second < best_rank) {
          best_rank = it->second;
          best = static_cast<int>(i);
        }
      }
      if (best < 0) break;
      symbols[best] += symbols[best + 1];
      symbols.erase(symbols.begin() + best + 1);
    }
    return symbols;
  }

  std::map<std::string, int32_t> vocab_;
  std::map<std::pair<std::string, std::string>, int> ranks_;
  pcre2_code* re_ = nullptr;
};

// NFC of the text between the special tokens (they are cut out before normalization).
std::string nfc_around_specials(const std::string& text) {
  std::string out;
  size_t from = 0, i = 0;
  while (i < text.size()) {
    size_t len = 0;
    for (const auto& s : kSpecials)
      if (text.compare(i, s.size(), s) == 0) len = s.size();
    if (!len) {
      ++i;
      continue;
    }
    out += unicode::nfc(text.substr(from, i - from)) + text.substr(i, len);
    i += len;
    from = i;
  }
  return out + unicode::nfc(text.substr(from));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---------------------------------------------------------------------------------------------

TEST(BpeTokenizer, LoadsTheFixture) {
  const BpeTokenizer& tok = fixture_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 1024);
  EXPECT_EQ(tok.split_engine(), "qwen2-scanner");
  ASSERT_EQ(tok.added_tokens().size(), 3u);
  EXPECT_EQ(tok.token_id("<|endoftext|>"), 1021);
  EXPECT_EQ(tok.token_id("<|im_start|>"), 1022);
  EXPECT_EQ(tok.token_id("<|im_end|>"), 1023);
  EXPECT_EQ(tok.token_id("!"), 0);  // ids 0..255: the byte alphabet in Qwen2's order
  EXPECT_EQ(tok.token_id("Ġ"), 220);
  EXPECT_EQ(tok.token_content(1023), "<|im_end|>");
  EXPECT_EQ(tok.token_content(220), "Ġ");
  EXPECT_FALSE(tok.find_token("not a token").has_value());
}

// Expected ids spelled as the fixture's vocabulary strings; each follows from the merge ranks of
// fixture/tokenizer.json (e.g. " world": o+r (rank 8), Ġ+w (22), l+d (55), Ġw+or (205), Ġwor+ld (504)).
TEST(BpeTokenizer, EncodesByMergeRank) {
  const BpeTokenizer& tok = fixture_tokenizer();
  EXPECT_EQ(tok.encode(""), Ids{});
  EXPECT_EQ(tok.encode(" world"), ids(tok, {"Ġworld"}));
  EXPECT_EQ(tok.encode("the world"), ids(tok, {"the", "Ġworld"}));
  EXPECT_EQ(tok.encode(" the training"), ids(tok, {"Ġthe", "Ġtrain", "ing"}));
  EXPECT_EQ(tok.encode("a\n\nb"), ids(tok, {"a", "ĊĊ", "b"}));
  EXPECT_EQ(tok.encode("x\xC3\xA9"), ids(tok, {"x", "Ã", "©"}));  // é: two bytes, no merge in the fixture
}

TEST(BpeTokenizer, MatchesTheReferenceImplementationOnTheGoldenTexts) {
  const BpeTokenizer& tok = fixture_tokenizer();
  const ReferenceBpe ref(tok.spec());
  int compared = 0;
  for (const std::string& text : testing::golden_texts()) {
    if (text.find("<|") != std::string::npos) continue;  // the reference has no added tokens
    if (text.find("\xE1\xA0\x8E") != std::string::npos) continue;  // U+180E: PCRE2's \s differs
    EXPECT_EQ(tok.encode(text), ref.encode(text)) << json(text).dump();
    ++compared;
  }
  EXPECT_GT(compared, 350);
}

TEST(BpeTokenizer, DecodeOfEncodeIsTheNfcText) {
  const BpeTokenizer& tok = fixture_tokenizer();
  for (const std::string& text : testing::golden_texts())
    EXPECT_EQ(tok.decode(tok.encode(text)), nfc_around_specials(text)) << json(text).dump();
  // Normalization does not reach across a special token: '>' + U+0338 would compose to '≯'.
  EXPECT_EQ(tok.encode("<|im_end|>\xCC\xB8"), concat({{1023}, tok.encode("\xCC\xB8")}));
  EXPECT_EQ(tok.decode(tok.encode("<|im_end|>\xCC\xB8")), "<|im_end|>\xCC\xB8");
  EXPECT_EQ(tok.decode(tok.encode("cafe\xCC\x81")), "caf\xC3\xA9");
}

TEST(BpeTokenizer, DecodeRepairsSplitCharactersAndSkipsSpecialTokensOnRequest) {
  const BpeTokenizer& tok = fixture_tokenizer();
  const Ids e = tok.encode("\xC3\xA9");  // two byte tokens
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(tok.decode({e[0]}), "\xEF\xBF\xBD");  // half a character -> U+FFFD, like HF
  EXPECT_EQ(tok.decode({e[0], e[1]}), "\xC3\xA9");
  const Ids chat = tok.encode("<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(chat.front(), 1022);
  EXPECT_EQ(chat.back(), 1023);
  EXPECT_EQ(tok.decode(chat), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(tok.decode(chat, /*skip_special=*/true), "user\nhi");
}

TEST(BpeTokenizer, SpecialTokensAreMatchedInTheRawTextLongestFirst) {
  BpeTokenizer tok = BpeTokenizer::load(fixture_tokenizer_path());
  const Ids added = tok.add_special_tokens({"<call:a>", "<call:ab>"});
  ASSERT_EQ(added, (Ids{1024, 1025}));
  const BpeTokenizer& plain = fixture_tokenizer();
  EXPECT_EQ(tok.encode("x<call:ab>y"), concat({plain.encode("x"), {1025}, plain.encode("y")}));
  EXPECT_EQ(tok.encode("<call:a>b>"), concat({{1024}, plain.encode("b>")}));
  EXPECT_EQ(tok.encode("<<call:a><call:ab>"), concat({plain.encode("<"), {1024, 1025}}));
  EXPECT_EQ(tok.encode("<call:a"), plain.encode("<call:a"));
  EXPECT_EQ(tok.encode("<|im_start|><|im_end|>"), (Ids{1022, 1023}));
  EXPECT_EQ(tok.encode("<|IM_END|>"), plain.encode("<|IM_END|>"));  // exact match only
  EXPECT_EQ(tok.encode("a<|im_end|>b"), concat({plain.encode("a"), {1023}, plain.encode("b")}));
}

// The added-token flags, on HF's own examples (tokenizers/src/tokenizer/added_vocabulary.rs tests
// test_single_word_is_correct, test_lstrip_unicode_space and options_use_cases).
TEST(BpeTokenizer, AddedTokenFlagsBehaveAsInHf) {
  const BpeTokenizer& plain = fixture_tokenizer();
  const auto with = [&](std::vector<AddedToken> extra) {
    BpeSpec spec = plain.spec();
    for (auto& t : extra) spec.added_tokens.push_back(t);
    return BpeTokenizer(std::move(spec), "fixture+flags");
  };
  AddedToken mask;
  mask.id = 1024;
  mask.content = "<mask>";
  mask.single_word = true;
  {
    const BpeTokenizer tok = with({mask});
    EXPECT_EQ(tok.encode("<mask> My name <mask> A<mask> <mask>ony <mask>"),
              concat({{1024}, plain.encode(" My name "), {1024}, plain.encode(" A<mask> <mask>ony "), {1024}}));
    // A mark is a word character, punctuation is not.
    EXPECT_EQ(tok.encode("<mask>, <mask>- \xCC\xB0<mask>"),
              concat({{1024}, plain.encode(", "), {1024}, plain.encode("- \xCC\xB0<mask>")}));
  }
  mask.lstrip = mask.rstrip = true;
  {
    const BpeTokenizer tok = with({mask});
    // The whitespace around the token is swallowed (U+2000 is White_Space).
    EXPECT_EQ(tok.encode("Hi <mask> there\t<mask>\t<mask>\xE2\x80\x80"),
              concat({plain.encode("Hi"), {1024}, plain.encode("there"), {1024}, {1024}}));
  }
  AddedToken cafe;  // normalized: matched after NFC, so the decomposed spelling matches too
  cafe.id = 1024;
  cafe.content = "caf\xC3\xA9";
  cafe.normalized = true;
  cafe.special = false;
  AddedToken raw;  // not normalized: matched in the raw text only
  raw.id = 1025;
  raw.content = "e\xCC\x81x";
  {
    const BpeTokenizer tok = with({cafe, raw});
    EXPECT_EQ(tok.encode("cafe\xCC\x81 and caf\xC3\xA9"), concat({{1024}, plain.encode(" and "), {1024}}));
    EXPECT_EQ(tok.encode("e\xCC\x81x"), (Ids{1025}));
    EXPECT_EQ(tok.encode("\xC3\xA9x"), plain.encode("\xC3\xA9x"));
    // Not special, so kept; and decoded as HF does: the added token's text goes through the
    // ByteLevel decoder like any token (tokenizer/mod.rs decode, byte_level.rs decode_chain), and
    // 'é' (U+00E9) is in the byte alphabet, standing for the lone byte 0xE9, hence U+FFFD.
    EXPECT_EQ(tok.decode(tok.encode("cafe\xCC\x81!"), /*skip_special=*/true), "caf\xEF\xBF\xBD!");
  }
}

TEST(BpeTokenizer, AddSpecialTokensAppendsActionTokens) {
  BpeTokenizer tok = BpeTokenizer::load(fixture_tokenizer_path());
  const Ids got = tok.add_special_tokens({"<call:gpt-4o>", "<finish:vote>", "<|im_end|>", "<call:gpt-4o>"});
  EXPECT_EQ(got, (Ids{1024, 1025, 1023, 1024}));
  EXPECT_EQ(tok.vocab_size(), 1026);
  EXPECT_EQ(tok.added_tokens().size(), 5u);
  EXPECT_EQ(tok.token_id("<finish:vote>"), 1025);
  const Ids e = tok.encode("<call:gpt-4o>hi<finish:vote>");
  EXPECT_EQ(e, concat({{1024}, fixture_tokenizer().encode("hi"), {1025}}));
  EXPECT_EQ(tok.decode(e), "<call:gpt-4o>hi<finish:vote>");
  EXPECT_EQ(tok.decode(e, true), "hi");
  // A vocabulary string becomes a special added token with its own id, as in HF.
  const int32_t the = tok.token_id("Ġthe");
  EXPECT_EQ(tok.add_special_tokens({"Ġthe"}), Ids{the});
  EXPECT_EQ(tok.vocab_size(), 1026);
  EXPECT_EQ(tok.decode({the}, true), "");
  EXPECT_NE(error_of([&] { tok.add_special_tokens({"<ok>", ""}); }).find("names[1].content: must not be empty"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tok.add_special_tokens({"bad\xFF"}); }).find("invalid UTF-8"), std::string::npos);
  EXPECT_EQ(tok.vocab_size(), 1026);  // a failed call adds nothing, not even its valid names
  EXPECT_FALSE(tok.find_token("<ok>").has_value());
}

TEST(BpeTokenizer, WriteJsonRoundTripsAndFollowsTheHfSchema) {
  // The fixture was written by the same writer: spec -> text reproduces the file byte for byte.
  EXPECT_EQ(tokenizer_json_text(fixture_tokenizer().spec()), read_file(fixture_tokenizer_path()));

  BpeTokenizer tok = BpeTokenizer::load(fixture_tokenizer_path());
  tok.add_special_tokens({"<call:gpt-4o>", "<call:claude-3>", "<finish:vote>"});
  const std::string path = testing::temp_dir() + "/tokenizer.json";
  tok.write_json(path);
  const BpeTokenizer back = BpeTokenizer::load(path);
  EXPECT_EQ(back.vocab_size(), 1027);
  for (const std::string& text : testing::golden_texts()) EXPECT_EQ(back.encode(text), tok.encode(text));
  EXPECT_EQ(back.encode("<call:claude-3><finish:vote>"), (Ids{1025, 1026}));

  // JSON level: what HF's AddedTokenWithId deserializer reads.
  const json j = parse_json(read_file(path), path);
  const json& added = j.at("added_tokens");
  ASSERT_EQ(added.size(), 6u);
  std::set<int64_t> vocab_ids;
  for (auto it = j.at("model").at("vocab").begin(); it != j.at("model").at("vocab").end(); ++it)
    vocab_ids.insert(it.value().get<int64_t>());
  EXPECT_EQ(vocab_ids.size(), 1021u);
  int64_t previous = -1;
  const std::vector<std::string> contents = {"<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                             "<call:gpt-4o>", "<call:claude-3>", "<finish:vote>"};
  for (size_t i = 0; i < added.size(); ++i) {
    const json& t = added[i];
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t.size(), 7u);
    ASSERT_TRUE(t.at("id").is_number_integer());
    EXPECT_GT(t.at("id").get<int64_t>(), previous);  // ascending ids
    previous = t.at("id").get<int64_t>();
    EXPECT_EQ(previous, 1021 + static_cast<int64_t>(i));
    EXPECT_EQ(vocab_ids.count(previous), 0u);  // added ids live outside model.vocab
    EXPECT_EQ(t.at("content"), contents[i]);
    for (const char* flag : {"single_word", "lstrip", "rstrip", "normalized"}) EXPECT_EQ(t.at(flag), false) << flag;
    EXPECT_EQ(t.at("special"), true);
  }
  EXPECT_EQ(j.at("model").at("merges").size(), 765u);
  EXPECT_TRUE(j.at("model").at("merges")[0].is_array());
}

TEST(BpeTokenizer, ReadsMergesWrittenAsStrings) {
  json j = parse_json(read_file(fixture_tokenizer_path()), "fixture");
  for (json& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  const BpeTokenizer tok(parse_tokenizer_json(j.dump(), "strings.json"), "strings.json");
  for (const std::string& text : testing::golden_texts()) EXPECT_EQ(tok.encode(text), fixture_tokenizer().encode(text));
  EXPECT_FALSE(tok.spec().merges_as_pairs);
  EXPECT_NE(tokenizer_json_text(tok.spec()).find("\"Ġ |\""), std::string::npos);  // written back as strings
}

TEST(BpeTokenizer, IgnoreMergesLooksUpWholePiecesFirst) {
  BpeSpec spec;
  spec.split_patterns = {kQwen2Pattern};
  for (size_t i = 0; i < 256; ++i) {
    std::string s;
    unicode::append_utf8(s, byte_to_unicode(byte_level_order()[i]));
    spec.vocab.emplace_back(s, static_cast<int32_t>(i));
  }
  spec.vocab.emplace_back("bc", 256);
  spec.vocab.emplace_back("abc", 257);  // in the vocabulary, but no merge produces it
  spec.merges = {{"b", "c"}};
  const BpeTokenizer merging(spec, "merging");
  const int32_t a = merging.token_id("a");
  EXPECT_EQ(merging.encode("abc"), (Ids{a, 256}));
  spec.ignore_merges = true;
  const BpeTokenizer ignoring(spec, "ignoring");
  EXPECT_EQ(ignoring.encode("abc"), (Ids{257}));
  EXPECT_EQ(ignoring.encode("abcc"), (Ids{a, 256, merging.token_id("c")}));
}

TEST(BpeTokenizer, CacheAndRegexEngineDoNotChangeIds) {
  BpeOptions no_cache;
  no_cache.cache_entries = 0;
  BpeOptions pcre;
  pcre.force_pcre2 = true;
  const BpeTokenizer a = BpeTokenizer::load(fixture_tokenizer_path(), no_cache);
  const BpeTokenizer b = BpeTokenizer::load(fixture_tokenizer_path(), pcre);
  EXPECT_EQ(b.split_engine(), "pcre2-jit");
  for (const std::string& text : testing::golden_texts()) {
    const Ids want = fixture_tokenizer().encode(text);
    EXPECT_EQ(a.encode(text), want);
    if (text.find("\xE1\xA0\x8E") == std::string::npos) {
      EXPECT_EQ(b.encode(text), want) << json(text).dump();
    }
  }
}

TEST(BpeTokenizer, EncodeIsThreadSafe) {
  BpeOptions small_cache;  // small: shards get cleared while other threads read them
  small_cache.cache_entries = 256;
  const BpeTokenizer tok = BpeTokenizer::load(fixture_tokenizer_path(), small_cache);
  const std::vector<std::string> texts = testing::golden_texts();
  std::vector<Ids> want;
  for (const auto& t : texts) want.push_back(fixture_tokenizer().encode(t));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int round = 0; round < 10; ++round)
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t j = (i * 7 + k * 13 + round) % texts.size();
          mismatches[k] += tok.encode(texts[j]) != want[j];
        }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0, 0, 0}));
}

TEST(BpeTokenizer, InvalidUtf8IsAnErrorNamingTheByte) {
  const BpeTokenizer& tok = fixture_tokenizer();
  const std::string m = error_of([&] { tok.encode("ab\xFF" "cd"); });
  EXPECT_NE(m.find("not valid UTF-8: byte 2 (0xff)"), std::string::npos) << m;
  EXPECT_NE(error_of([&] { tok.encode("ok \xED\xA0\x80"); }).find("byte 3"), std::string::npos);
  EXPECT_EQ(tok.encode(sanitize_utf8("ab\xFF" "cd")), tok.encode("ab\xEF\xBF\xBD" "cd"));
}

TEST(BpeTokenizer, UnknownIdsAndTokensAreErrors) {
  const BpeTokenizer& tok = fixture_tokenizer();
  EXPECT_NE(error_of([&] { tok.decode({5, 5000}); }).find("id 5000 (position 1) is not a token"), std::string::npos);
  EXPECT_NE(error_of([&] { tok.decode({-1}); }).find("id -1"), std::string::npos);
  const std::string m = error_of([&] { tok.token_id("<call:nope>"); });
  EXPECT_NE(m.find("no token \"<call:nope>\""), std::string::npos) << m;
  EXPECT_NE(m.find(fixture_tokenizer_path()), std::string::npos) << m;
}

// ---- malformed and unsupported files: the message names the file, the JSON path and the problem

class TokenizerFileErrors : public ::testing::Test {
 protected:
  json fixture = parse_json(read_file(fixture_tokenizer_path()), "fixture");
  std::string load_error(const json& j) { return load_text_error(j.dump()); }
  std::string load_text_error(const std::string& text) {
    const std::string path = testing::temp_dir() + "/bad-tokenizer.json";
    write_file_atomic(path, text);
    const std::string m = error_of([&] { BpeTokenizer::load(path); });
    EXPECT_EQ(m.rfind(path, 0), 0u) << "the message starts with the file: " << m;
    return m;
  }
};

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST_F(TokenizerFileErrors, CorruptJson) {
  const std::string text = read_file(fixture_tokenizer_path());
  EXPECT_HAS(load_text_error(text.substr(0, text.size() / 2)), "invalid JSON");
  EXPECT_HAS(error_of([] { BpeTokenizer::load("/nonexistent/tokenizer.json"); }), "/nonexistent/tokenizer.json");
}

TEST_F(TokenizerFileErrors, UnsupportedKinds) {
  json j = fixture;
  j["model"]["type"] = "WordPiece";
  EXPECT_HAS(load_error(j), "model.type: \"WordPiece\" is not supported (only BPE)");
  j = fixture;
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_HAS(load_error(j), "normalizer.type: \"Lowercase\" is not supported");
  j = fixture;
  j["pre_tokenizer"]["pretokenizers"][0]["type"] = "Metaspace";
  EXPECT_HAS(load_error(j), "pre_tokenizer.pretokenizers[0].type: \"Metaspace\" is not supported");
  j = fixture;
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  EXPECT_HAS(load_error(j), "pre_tokenizer.pretokenizers[0].behavior: \"Removed\" is not supported");
  j = fixture;
  j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true;
  EXPECT_HAS(load_error(j), "pre_tokenizer.pretokenizers[1].use_regex");
  j = fixture;
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_HAS(load_error(j), "decoder.type: \"WordPiece\" is not supported");
  j = fixture;
  j["post_processor"] = {{"type", "TemplateProcessing"}};
  EXPECT_HAS(load_error(j), "post_processor.type: \"TemplateProcessing\" is not supported");
  j = fixture;
  j["model"]["dropout"] = 0.1;
  EXPECT_HAS(load_error(j), "model.dropout: must be null");
  j = fixture;
  j["model"]["byte_fallback"] = true;
  EXPECT_HAS(load_error(j), "model.byte_fallback");
  j = fixture;
  j["truncation"] = {{"max_length", 512}};
  EXPECT_HAS(load_error(j), "truncation: must be null");
}

TEST_F(TokenizerFileErrors, UnknownFieldsAreNotIgnored) {
  json j = fixture;
  j["model"]["vocab_size"] = 5;
  EXPECT_HAS(load_error(j), "model.vocab_size: unknown field");
  j = fixture;
  j["added_tokens"][0]["lstrip_all"] = true;
  EXPECT_HAS(load_error(j), "added_tokens[0].lstrip_all: unknown field");
  j = fixture;
  j["extra"] = 1;
  EXPECT_HAS(load_error(j), "(top level).extra: unknown field");
}

TEST_F(TokenizerFileErrors, MissingOrInconsistentModel) {
  json j = fixture;
  j["model"].erase("merges");
  EXPECT_HAS(load_error(j), "model.merges: missing");
  j = fixture;
  j["model"]["merges"][3] = {"Ġ", "zz"};
  EXPECT_HAS(load_error(j), "model.merges[3]: \"zz\" is not in model.vocab");
  j = fixture;
  j["model"]["merges"][4] = {"Ġ", "Ġ", "Ġ"};
  EXPECT_HAS(load_error(j), "model.merges[4]: expected a pair of strings");
  j = fixture;
  j["model"]["vocab"].erase("Ā");
  EXPECT_HAS(load_error(j), "the byte-level character \"Ā\" (byte 0x00) is missing");
  j = fixture;
  j["model"]["vocab"]["Ġthe"] = 3;
  EXPECT_HAS(load_error(j), "is also the id of");
  j = fixture;
  j["model"]["vocab"]["x"] = -4;
  EXPECT_HAS(load_error(j), "model.vocab[\"x\"]: expected an id");
  j = fixture;
  j["model"]["vocab"]["Ġzzz"] = 2000000000;
  EXPECT_HAS(load_error(j), "model.vocab[\"Ġzzz\"]: id 2000000000 is above the supported maximum 16777215");
  j = fixture;
  j["added_tokens"][0]["id"] = 5;
  EXPECT_HAS(load_error(j), "added_tokens[0].id: 5 is the id of");
  j = fixture;
  j["added_tokens"][1]["content"] = "<|endoftext|>";
  EXPECT_HAS(load_error(j), "added_tokens[1].content: \"<|endoftext|>\" is listed twice");
  j = fixture;
  j["added_tokens"][2].erase("special");
  EXPECT_HAS(load_error(j), "added_tokens[2].special: missing");
  j = fixture;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "([a-z";
  EXPECT_HAS(load_error(j), "pre_tokenizer.pretokenizers[0].pattern.Regex: PCRE2 cannot compile");
}

}  // namespace
}  // namespace conductor
