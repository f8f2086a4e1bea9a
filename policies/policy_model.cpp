#include "policies/policy_model.h"

#include <limits>

#include "core/error.h"

namespace conductor {

void EncodedObs::clear() {
  dense.clear();
  tokens.clear();
  offsets.assign(1, 0);
  keys.clear();
  rows = 0;
}

void EncodedObs::reserve(int64_t rows_hint, int64_t tokens_hint) {
  if (dense_dim > 0) dense.reserve(static_cast<std::size_t>(rows_hint * dense_dim));
  if (tokens_hint > 0) {
    tokens.reserve(static_cast<std::size_t>(tokens_hint));
    offsets.reserve(static_cast<std::size_t>(rows_hint + 1));
  }
}

void EncodedObs::append_row(const EncodedObs& src, int64_t r) {
  CONDUCTOR_CHECK(r >= 0 && r < src.rows, "append_row: row ", r, " of ", src.rows);
  if (rows == 0) dense_dim = src.dense_dim;
  CONDUCTOR_CHECK(src.dense_dim == dense_dim, "append_row: dense width ", src.dense_dim, " into ", dense_dim);
  if (dense_dim > 0)
    dense.insert(dense.end(), src.dense.begin() + r * dense_dim, src.dense.begin() + (r + 1) * dense_dim);
  if (src.offsets.size() == static_cast<std::size_t>(src.rows) + 1 && src.offsets.back() > 0) {
    tokens.insert(tokens.end(), src.tokens.begin() + src.offsets[r], src.tokens.begin() + src.offsets[r + 1]);
    offsets.push_back(static_cast<int64_t>(tokens.size()));
  }
  if (!src.keys.empty()) keys.push_back(src.keys[r]);
  ++rows;
}

torch::Tensor masked_log_probs(const torch::Tensor& logits, const torch::Tensor& mask) {
  const auto masked = logits.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  return torch::log_softmax(masked, -1);
}

torch::Tensor masked_entropy(const torch::Tensor& log_probs) {
  const auto finite = torch::isfinite(log_probs);
  const auto safe = torch::where(finite, log_probs, torch::zeros_like(log_probs));
  return -(safe.exp() * safe).masked_fill(finite.logical_not(), 0.0).sum(-1);
}

torch::Tensor row_range(int64_t begin, int64_t end) { return torch::arange(begin, end, torch::kInt64); }

}  // namespace conductor
