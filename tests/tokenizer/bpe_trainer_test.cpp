// The byte-level BPE trainer (tokenizer/bpe_trainer.h): merges computed by hand on a tiny corpus,
// the documented tie-break, determinism, and the checked-in fixture reproduced byte for byte.
#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/bpe_trainer.h"

namespace conductor {
namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;

// "ab ab cd cd" splits into the pieces "ab", " ab", " cd", " cd". Pair counts: (a,b) 2, (' ',c) 2,
// (c,d) 2, (' ',a) 1. Ties at 2 go to the smallest (left, right) bytes: ' ' (0x20) < 'a' < 'c', so
// (' ',c) first; then (" c",d) 2 beats (a,b) 2 because " c" < "a"; then (a,b) 2; then only
// (' ',"ab") is left, seen once, below min_frequency 2.
TEST(BpeTrainer, MergesTheMostFrequentPairWithTheDocumentedTieBreak) {
  BpeTrainOptions options;
  options.vocab_size = 300;
  const BpeTrainResult r = train_bpe({"ab ab cd cd"}, options);
  EXPECT_EQ(r.spec.merges, (Merges{{"Ġ", "c"}, {"Ġc", "d"}, {"a", "b"}}));
  EXPECT_EQ(r.merges, 3);
  EXPECT_FALSE(r.reached_vocab_size);
  EXPECT_EQ(r.pieces, 4);
  EXPECT_EQ(r.unique_pieces, 3);
  const BpeTokenizer tok(r.spec, "trained");
  EXPECT_EQ(tok.vocab_size(), 262);  // 256 + 3 merges + 3 special tokens
  EXPECT_EQ(tok.token_id("Ġc"), 256);
  EXPECT_EQ(tok.token_id("Ġcd"), 257);
  EXPECT_EQ(tok.token_id("ab"), 258);
  EXPECT_EQ(tok.token_id("<|endoftext|>"), 259);
  EXPECT_EQ(tok.token_id("<|im_start|>"), 260);
  EXPECT_EQ(tok.token_id("<|im_end|>"), 261);
  EXPECT_EQ(tok.encode("ab cd"), (std::vector<int32_t>{258, 257}));

  options.min_frequency = 1;  // now (' ', "ab") qualifies too
  EXPECT_EQ(train_bpe({"ab ab cd cd"}, options).spec.merges, (Merges{{"Ġ", "c"}, {"Ġc", "d"}, {"a", "b"}, {"Ġ", "ab"}}));
  options.vocab_size = 256 + 1 + 3;  // room for one merge only
  const BpeTrainResult one = train_bpe({"ab ab cd cd"}, options);
  EXPECT_EQ(one.spec.merges, (Merges{{"Ġ", "c"}}));
  EXPECT_TRUE(one.reached_vocab_size);
}

TEST(BpeTrainer, CountsPiecesAcrossTextsAndSkipsSpecialTokens) {
  BpeTrainOptions options;
  options.vocab_size = 400;
  // Without the special-token rule, "<|" and "|>" would be the most frequent pairs.
  const BpeTrainResult r = train_bpe({"<|im_start|>x<|im_end|>", "<|im_end|><|endoftext|>", "<|im_start|>x"}, options);
  EXPECT_EQ(r.merges, 0);
  EXPECT_EQ(r.pieces, 2);  // "x" twice
  // NFC before counting: both spellings of "é" are the same piece.
  const BpeTrainResult n = train_bpe({"e\xCC\x81", "\xC3\xA9"}, options);
  EXPECT_EQ(n.unique_pieces, 1);
  EXPECT_EQ(n.spec.merges, (Merges{{"Ã", "©"}}));
}

TEST(BpeTrainer, ReproducesTheCheckedInFixture) {
  // The fixture was made by: conductor tokenizer train --input tests/tokenizer/fixture/corpus.txt
  //                            --vocab-size 1024 --out tests/tokenizer/fixture/tokenizer.json
  const std::string dir = testing::tokenizer_test_dir() + "/fixture";
  BpeTrainOptions options;
  options.vocab_size = 1024;
  const BpeTrainResult a = train_bpe({read_file(dir + "/corpus.txt")}, options);
  const BpeTrainResult b = train_bpe({read_file(dir + "/corpus.txt")}, options);
  EXPECT_TRUE(a.reached_vocab_size);
  EXPECT_EQ(a.merges, 765);
  const std::string text = tokenizer_json_text(BpeTokenizer(a.spec, "trained").spec());
  EXPECT_EQ(text, tokenizer_json_text(b.spec));
  EXPECT_EQ(text, read_file(dir + "/tokenizer.json"));
  EXPECT_LT(text.size(), 100u * 1024);
}

TEST(BpeTrainer, RejectsBadInput) {
  BpeTrainOptions options;
  options.vocab_size = 258;
  try {
    train_bpe({"x"}, options);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--vocab-size 258 is too small"), std::string::npos) << e.what();
  }
  options.vocab_size = 300;
  try {
    train_bpe({"fine", "bad \xC3"}, options);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text 1 is not valid UTF-8 at byte 4"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace conductor
