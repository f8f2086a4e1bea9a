// The transformer conductor's LibTorch side (policies/transformer.h says what it is and its keys).
//
// Network: the base decoder (llm::Qwen2ForCausalLM), the action tokens' own input embeddings
// `action_embed` [A x H] and output rows `action_head` [A x H] (f32; the head starts at zero, so the
// initial policy is uniform over the allowed actions, as CleanRL's 0.01-gain head makes it nearly
// so), and `value_head` (H -> 1, f32). Logits of action a at the prompt's last position are
// final_norm(h) . action_head[a]; an export writes the action rows into the vocabulary rows of the
// action tokens, so the exported HF model's own logits for those tokens are these logits.
//
// Compute paths (the same function, checked against each other in tests):
//  - without gradients (rollouts, evaluation, serving): one row at a time through a KV cache that
//    continues the row's previous decision point (the prompt of step t is a prefix of step t + 1's)
//    or the shared system part (the same for every query with the same pool and prices), so each
//    step processes only its new tokens;
//  - with gradients (the update): rows right-padded into one batch; with train_top_layers K, the
//    frozen lower layers' outputs come from a cache filled by the rollout (each prompt's lower layers
//    run once, across PPO epochs and episodes); the last decoder layer runs its attention query and
//    MLP at each row's last position only (its keys and values still cover every position), since
//    only that position's hidden state is read.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "llm/qwen2.h"
#include "policies/policy_model.h"
#include "policies/transformer.h"
#include "policies/transformer_prompt.h"

namespace conductor {

// Everything the training model, its KL reference and its inference policy share.
struct TransformerCore {
  TransformerSettings settings;
  std::vector<std::string> action_names;
  std::shared_ptr<BpeTokenizer> tokenizer;
  std::shared_ptr<ConductorPrompt> prompt;
  llm::Qwen2ForCausalLM lm{nullptr};
  torch::Tensor action_embed;  // [A, H] model dtype
  torch::Tensor action_head;   // [A, H] f32
  torch::nn::Linear value_head{nullptr};
  torch::Tensor action_of_token;  // int64 [max token id + 1]: action index of a token id, -1 otherwise
  std::string base_sha256;        // of the checkpoint's files ("" for a preset)
  int64_t frozen_layers = 0;      // lower layers whose outputs are cached (0: none)
  bool adapters_off = false;      // a LoRA reference: the base model alone

  int n_actions() const { return static_cast<int>(action_names.size()); }
  int64_t num_layers() const { return lm->config().num_hidden_layers; }
};

// Prompt-keyed caches of the no-gradient path (KV caches of decision points) and of the frozen
// lower layers' outputs. Entries hold their tokens, so a hash collision is never a wrong hit.
class TransformerCaches {
 public:
  struct Decision {
    std::vector<int32_t> tokens;
    std::shared_ptr<llm::KVCache> kv;  // every layer, for the tokens
    torch::Tensor lower;               // [T, H] outputs of the frozen layers (undefined when none)
    torch::Tensor last_hidden;         // [H] final-normed hidden state at the last token
    uint64_t used = 0;
  };
  const Decision* find_decision(const int32_t* tokens, int64_t n);
  void put_decision(Decision d, bool pinned);
  torch::Tensor find_lower(const int32_t* tokens, int64_t n);
  void put_lower(const int32_t* tokens, int64_t n, const torch::Tensor& lower, int64_t budget_bytes);
  // Forgets the decision points not used in the last `keep` calls (pinned ones stay, up to 64).
  void next_call(uint64_t keep = 2);
  void clear_decisions();  // KV caches and states (stale once trainable weights change)
  void clear();

  std::atomic<int64_t> lower_hits{0}, lower_misses{0}, kv_reuse_tokens{0}, kv_new_tokens{0};

 private:
  struct Lower {
    std::vector<int32_t> tokens;
    torch::Tensor lower;
  };
  std::unordered_multimap<uint64_t, Decision> decisions_;
  std::unordered_multimap<uint64_t, Decision> pinned_;
  std::unordered_multimap<uint64_t, Lower> lowers_;
  std::vector<uint64_t> lower_order_;
  int64_t lower_bytes_ = 0;
  uint64_t call_ = 1;
};

class TransformerModel final : public PolicyModel {
 public:
  // Builds the network of `settings` for an environment's action space (tokenizer, prompt, base
  // weights from the checkpoint or the preset's random init, LoRA, frozen layers).
  TransformerModel(const TransformerSettings& settings, const EnvSpec& env);
  explicit TransformerModel(std::shared_ptr<TransformerCore> core);

  std::string kind() const override { return "transformer"; }
  int n_actions() const override { return core_->n_actions(); }
  ObsNeeds needs() const override { return ObsNeeds{0, true}; }
  void encode(const ObsBatch& obs, EncodedObs& out) const override;
  PolicyOutput forward(const EncodedObs& enc, const torch::Tensor& rows) override;
  std::vector<torch::Tensor> parameters() override;
  std::vector<torch::Tensor> policy_parameters() override;
  void save(const std::string& dir) override;
  void load(const std::string& dir) override;
  void save_weights(const std::string& path) override;
  void load_weights(const std::string& path) override;
  std::unique_ptr<PolicyModel> frozen_copy() override;
  std::unique_ptr<Policy> inference_policy() override;
  // policy/truncated_prompts (prompts whose query was shortened) and policy/kv_reused_share (share
  // of prompt tokens served from KV caches without gradients) since the last call.
  std::vector<std::pair<std::string, double>> take_stats() override;

  // Final-normed hidden states [R, H] at the last token of each of the rows.
  torch::Tensor last_hidden(const EncodedObs& enc, const torch::Tensor& rows);
  const std::shared_ptr<TransformerCore>& core() const { return core_; }
  TransformerCaches& caches() { return *caches_; }
  int64_t truncated_prompts() const { return truncated_->load(); }

  // The tensors save() writes: every trainable one, and with a preset (no base checkpoint) every one.
  std::vector<std::pair<std::string, torch::Tensor>> saved_tensors();

 private:
  torch::Tensor embed(const torch::Tensor& ids);  // base rows, action tokens from action_embed
  torch::Tensor hidden_no_grad(const int32_t* tokens, int64_t n, int64_t system_end);
  // Runs tokens [start, end) through the frozen layers (their outputs appended to `lower`) and, with
  // `top`, the rest: returns the final-normed hidden state at `end - 1` (undefined without `top`).
  torch::Tensor run_chunk(const int32_t* tokens, int64_t start, int64_t end, llm::KVCache* kv, torch::Tensor& lower,
                          bool top);
  torch::Tensor hidden_batch(const std::vector<std::vector<int32_t>>& rows, const std::vector<int64_t>& system_ends);
  // Frozen layers' outputs [n, H] of a prompt, cached.
  torch::Tensor lower_of(const int32_t* tokens, int64_t n, int64_t system_end);
  // Where the no-gradient path splits a prompt: the ends of the system part, the query and each call.
  std::vector<int64_t> chunk_ends(const int32_t* tokens, int64_t n, int64_t system_end) const;
  torch::Tensor last_position_layer(int64_t layer, const torch::Tensor& h, const torch::Tensor& lengths);

  std::shared_ptr<TransformerCore> core_;
  std::vector<int64_t> action_of_cpu_;  // core_->action_of_token on the CPU
  std::shared_ptr<TransformerCaches> caches_ = std::make_shared<TransformerCaches>();
  std::shared_ptr<std::atomic<int64_t>> truncated_ = std::make_shared<std::atomic<int64_t>>(0);
  std::shared_ptr<std::mutex> mutex_ = std::make_shared<std::mutex>();
  // Set by a pass with gradients (an optimizer step may follow): the next pass without gradients
  // drops the decision caches first. The frozen layers' cache stays valid (nothing in it trains).
  bool weights_may_have_changed_ = false;
  int64_t taken_truncated_ = 0, taken_reused_ = 0, taken_new_ = 0;
};

// The core of a checkpoint folder or an export directory (policy.json / manifest config).
std::shared_ptr<TransformerCore> load_transformer_checkpoint(const std::string& checkpoint_dir);
// The torch-free inference face of a transformer conductor over `core` (transformer_model.cpp).
std::unique_ptr<Policy> make_transformer_policy(std::shared_ptr<TransformerCore> core);

}  // namespace conductor
