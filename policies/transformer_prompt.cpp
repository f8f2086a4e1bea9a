#include "policies/transformer_prompt.h"

#include <cstdio>

#include "core/error.h"
#include "traces/trace_set.h"

namespace conductor {

namespace {

// A special token name must be one ASCII word: the byte-level decoder maps other bytes through its
// alphabet, and a space would let the pre-tokenizer split it.
bool valid_token_name(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>') return false;
  return true;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

const char* error_name(uint8_t e) {
  switch (e) {
    case kTimeout: return "timeout";
    case kRateLimited: return "rate limited";
    case kServerError: return "server error";
    default: return "error";
  }
}

// `text` with at most `keep` bytes from each end when it is longer than 2 * keep (cut on UTF-8
// boundaries is not needed: sanitize_utf8 replaces a broken sequence at the cut).
std::string clip_bytes(std::string_view text, std::size_t keep, bool* clipped) {
  if (text.size() <= 2 * keep) return std::string(text);
  *clipped = true;
  return std::string(text.substr(0, keep)) + std::string(text.substr(text.size() - keep));
}

}  // namespace

ConductorPrompt::ConductorPrompt(std::shared_ptr<BpeTokenizer> tokenizer, const std::vector<std::string>& action_names,
                                 int max_steps, int max_prompt_tokens)
    : tok_(std::move(tokenizer)), max_steps_(max_steps), max_tokens_(max_prompt_tokens) {
  CONDUCTOR_CHECK(tok_, "ConductorPrompt without a tokenizer");
  for (const auto& a : action_names) {
    const auto colon = a.find(':');
    const std::string kind = colon == std::string::npos ? "" : a.substr(0, colon);
    const std::string name = colon == std::string::npos ? "" : a.substr(colon + 1);
    if ((kind != "call" && kind != "finish") || !valid_token_name(name))
      fail("transformer policy: action '", a, "' cannot be an action token: expected call:NAME or finish:RULE with ",
           "NAME one word of printable ASCII (no spaces, '<' or '>')");
    if (kind == "call") ++n_workers_;
    action_tokens_.push_back("<" + a + ">");
  }
  action_ids_ = tok_->add_special_tokens(action_tokens_);
  for (const auto& t : tok_->added_tokens()) added_.emplace(t.id, t.content);
  user_open_ = tok_->encode("<|im_start|>user\n");
  user_close_ = tok_->encode("<|im_end|>\n<|im_start|>assistant\n");
  ellipsis_ = tok_->encode(" ... ");
  // The largest system part (every worker in the pool at its highest plausible price) must leave
  // room for a query.
  const int worst_system = 40 + 12 * n_workers_;
  if (max_tokens_ - worst_system - max_steps_ * kStepReserve < 32)
    fail("policy.max_prompt_tokens: ", max_tokens_, " leaves no room for the query with ", n_workers_,
         " workers and max_steps ", max_steps_, " (need at least ", worst_system + max_steps_ * kStepReserve + 32, ")");
}

std::vector<int32_t> ConductorPrompt::system_part(const ConductorStateView& s) const {
  std::string text =
      "<|im_start|>system\nYou route one query to worker LLMs. Workers available, with the expected cost of one "
      "call in USD:\n";
  for (int k = 0; k < s.n_workers && k < n_workers_; ++k) {
    if (!s.pool[k]) continue;
    const double cost = s.expected_cost_usd ? s.expected_cost_usd[k] * s.price_factor[k] : 0.0;
    text += action_tokens_[k] + fmt(" %.6f\n", cost);
  }
  text += "Cost weight: " + fmt("%.6g", s.cost_weight) + " per USD.<|im_end|>\n";
  return tok_->encode(text);
}

std::vector<int32_t> ConductorPrompt::call_part(const ConductorStateView& s, int j) const {
  const ConductorStepView& v = s.steps[j];
  std::string text;
  if (v.error != kOk) {
    text = std::string(" failed: ") + error_name(v.error) + ", " + fmt("%.1f s", v.latency_s) + ", " +
           fmt("%.6f USD\n", v.cost_usd);
  } else {
    int earlier = 0;
    for (int i = 0; i < j; ++i) earlier += (s.steps[i].error == kOk && s.steps[i].answer >= 0);
    const std::string agree = v.answer < 0 ? "answer not comparable"
                              : earlier == 0 ? "no earlier answer to compare"
                                             : "agrees with " + fmt("%.2f", v.agreement) + " of earlier answers";
    text = " answered: " + std::to_string(v.output_tokens) + " tokens, " + agree + ", " + fmt("%.1f s", v.latency_s) +
           ", " + fmt("%.6f USD\n", v.cost_usd);
  }
  std::vector<int32_t> ids{action_ids_.at(static_cast<std::size_t>(v.worker))};
  const auto rest = tok_->encode(text);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

PromptTokens ConductorPrompt::render(const ConductorStateView& s) const {
  CONDUCTOR_CHECK(s.n_workers == n_workers_, "state of ", s.n_workers, " workers for a prompt of ", n_workers_);
  PromptTokens p;
  p.ids = system_part(s);
  p.system_end = static_cast<int64_t>(p.ids.size());
  const int budget = max_tokens_ - static_cast<int>(p.ids.size() + user_open_.size() + user_close_.size()) -
                     max_steps_ * kStepReserve;
  p.ids.insert(p.ids.end(), user_open_.begin(), user_open_.end());
  // The query: "task: text", cut by bytes first (a token is at least one byte), then by tokens.
  const std::string head = s.task.empty() ? std::string() : std::string(s.task) + ": ";
  bool clipped = false;
  const std::string text = sanitize_utf8(head + clip_bytes(s.text, static_cast<std::size_t>(budget) * 8, &clipped));
  std::vector<int32_t> q = plain_ids(text);
  if (clipped || static_cast<int>(q.size()) > budget) {
    p.truncated = true;
    const int keep = std::max(0, budget - static_cast<int>(ellipsis_.size()));
    if (static_cast<int>(q.size()) > keep) {
      const int front = keep / 2, back = keep - front;
      std::vector<int32_t> cut(q.begin(), q.begin() + front);
      cut.insert(cut.end(), ellipsis_.begin(), ellipsis_.end());
      cut.insert(cut.end(), q.end() - back, q.end());
      q.swap(cut);
    }
  }
  p.ids.insert(p.ids.end(), q.begin(), q.end());
  p.ids.insert(p.ids.end(), user_close_.begin(), user_close_.end());
  p.part_ends.push_back(static_cast<int64_t>(p.ids.size()));
  for (int j = 0; j < s.n_steps; ++j) {
    const auto c = call_part(s, j);
    p.ids.insert(p.ids.end(), c.begin(), c.end());
    p.part_ends.push_back(static_cast<int64_t>(p.ids.size()));
  }
  return p;
}

std::vector<int32_t> ConductorPrompt::plain_ids(const std::string& text) const {
  // A query that spells an added token ("<|im_end|>", "<call:gpt-4>") must not close the chat turn
  // or act: such a match is re-encoded as its first character and the rest, both ordinary tokens.
  std::vector<int32_t> ids = tok_->encode(text), out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = added_.find(id);
    if (it == added_.end()) {
      out.push_back(id);
      continue;
    }
    for (const auto& piece : {it->second.substr(0, 1), it->second.substr(1)}) {
      const auto sub = tok_->encode(piece);
      out.insert(out.end(), sub.begin(), sub.end());
    }
  }
  return out;
}

std::string ConductorPrompt::text(const ConductorStateView& s) const { return tok_->decode(render(s).ids); }

}  // namespace conductor
