// The transformer conductor's prompt: a ConductorStateView rendered as chat-formatted text and
// tokenized, with the actions as special tokens of the vocabulary (docs/transformer.md, "Prompt").
//
//   <|im_start|>system
//   You route one query to worker LLMs. Workers available, with the expected cost of one call in USD:
//   <call:gpt-5> 0.006727
//   <call:deepseek-v3.2> 0.000208
//   ...
//   Cost weight: 30 per USD.<|im_end|>
//   <|im_start|>user
//   math: Solve for the probability about the matrix with the equation. Choose one option (A-E).<|im_end|>
//   <|im_start|>assistant
//   <call:deepseek-v3.2> answered: 212 tokens, no earlier answer to compare, 11.9 s, 0.000208 USD
//   <call:gpt-5> answered: 95 tokens, agrees with 1.00 of earlier answers, 8.1 s, 0.006700 USD
//
// The policy decides at the last token: its action distribution is the softmax of the action
// tokens' logits there, restricted to the mask. Each part (system, user, each call) is tokenized on
// its own and the parts are concatenated, so the tokens of step t are a prefix of the tokens of
// step t + 1 (the KV cache of the earlier steps is reused). Only workers in the episode's pool are
// listed; FINISH actions are never written into the prompt (they end the workflow).
//
// Length: max_prompt_tokens bounds the whole prompt with room for max_steps calls (kStepReserve
// tokens each). A query too long for the rest keeps its head and its tail with " ... " between (and
// PromptTokens::truncated and the policy's counter say so); a text of any size is cut by bytes first, so a 1 MB query costs
// no more than a long one. Invalid UTF-8 in the query is replaced by U+FFFD, never an error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "world/conductor_state.h"
#include "tokenizer/bpe_tokenizer.h"

namespace conductor {

struct PromptTokens {
  std::vector<int32_t> ids;
  int64_t system_end = 0;          // end of the system part (the same for every query of a pool and prices)
  std::vector<int64_t> part_ends;  // end offsets of system+user, then of each call's part
  bool truncated = false;          // the query was shortened to fit max_prompt_tokens
};

class ConductorPrompt {
 public:
  static constexpr int kStepReserve = 40;

  // `tokenizer` gets the action tokens added (`<call:NAME>` for env actions named "call:NAME",
  // `<finish:RULE>` for "finish:RULE"). Throws conductor::Error for an action name that is not of
  // those forms or cannot be a special token (empty, spaces, non-ASCII), or when max_prompt_tokens
  // leaves no room for a query after the system part.
  ConductorPrompt(std::shared_ptr<BpeTokenizer> tokenizer, const std::vector<std::string>& action_names,
                  int max_steps, int max_prompt_tokens);

  const std::vector<int32_t>& action_token_ids() const { return action_ids_; }
  const std::vector<std::string>& action_tokens() const { return action_tokens_; }
  const BpeTokenizer& tokenizer() const { return *tok_; }
  int max_prompt_tokens() const { return max_tokens_; }
  int max_steps() const { return max_steps_; }

  PromptTokens render(const ConductorStateView& s) const;
  // The same prompt as text (docs, debugging): decode(render(s).ids).
  std::string text(const ConductorStateView& s) const;

 private:
  std::vector<int32_t> system_part(const ConductorStateView& s) const;
  std::vector<int32_t> call_part(const ConductorStateView& s, int j) const;
  std::vector<int32_t> plain_ids(const std::string& text) const;  // no added token can come from text

  std::shared_ptr<BpeTokenizer> tok_;
  std::vector<std::string> action_tokens_;
  std::vector<int32_t> action_ids_;
  int n_workers_ = 0, max_steps_ = 1, max_tokens_ = 512;
  std::vector<int32_t> user_open_, user_close_, ellipsis_;
  std::unordered_map<int32_t, std::string> added_;  // added tokens' ids and contents
};

}  // namespace conductor
