// The trainer's view of the other training processes (data-parallel training, DESIGN.md section 10).
// Everything an algorithm must agree on across processes goes through these calls; a single process
// (LocalProcessGroup) makes each one the identity, so one code path serves both.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace conductor {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Replaces every gradient of `params` by its mean over the processes (before clipping and the
  // optimizer step).
  virtual void average_gradients(const std::vector<torch::Tensor>& params) = 0;
  // Replaces `values` by their element-wise sums over the processes (statistics, early-stop inputs).
  virtual void sum(std::vector<double>& values) = 0;
  // Every process's `blob` in rank order on rank 0, an empty vector on the other ranks
  // (checkpoints gather the environment states of every rank this way).
  virtual std::vector<std::string> gather_to_root(const std::string& blob) = 0;
};

class LocalProcessGroup final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void average_gradients(const std::vector<torch::Tensor>&) override {}
  void sum(std::vector<double>&) override {}
  std::vector<std::string> gather_to_root(const std::string& blob) override { return {blob}; }
};

}  // namespace conductor
