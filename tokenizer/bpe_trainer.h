// Trains a small byte-level BPE of the Qwen2 kind (what the small CPU conductor uses): NFC, the
// Qwen2 Split regex, the 256-symbol byte-level alphabet as ids 0..255 (in the order of Qwen2's
// own first 256 ids), merges learned from the text, and special tokens appended as added tokens.
//
// The algorithm is HF's BpeTrainer without its options: count the pre-tokenized pieces, then
// repeatedly merge the most frequent adjacent pair of symbols (counted over all pieces, weighted
// by piece frequency). Ties are broken deterministically: among pairs of equal count, the one
// whose (left bytes, right bytes) is lexicographically smallest (bytes compared as unsigned)
// wins. Text inside special tokens (e.g. "<|im_end|>" in a chat transcript) is not learned from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/bpe_tokenizer.h"

namespace conductor {

struct BpeTrainOptions {
  // Total ids: 256 byte symbols + learned merges + special tokens. Training stops earlier when no
  // pair reaches min_frequency (BpeTrainResult says so).
  int32_t vocab_size = 4096;
  // A pair must occur at least this many times (weighted) to be merged.
  int64_t min_frequency = 2;
  // Appended after the model vocabulary, in this order (Qwen's three by default).
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
};

struct BpeTrainResult {
  BpeSpec spec;
  int64_t pieces = 0;         // pre-tokenized pieces seen
  int64_t unique_pieces = 0;  // distinct ones
  int32_t merges = 0;
  bool reached_vocab_size = false;
};

// Throws conductor::Error for invalid UTF-8 (naming the text's index and the byte offset) and for
// a vocab_size too small to hold the alphabet and the special tokens.
BpeTrainResult train_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& options);

}  // namespace conductor
