#include "llm/linear.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace conductor::llm {

namespace {

// AVX512-BF16 (or AMX) gives oneDNN native bf16 dot products; without them its bf16 GEMM converts as it
// goes and runs at a third of OpenBLAS's f32 GEMM on the same CPU (17 vs 45-60 GFLOP/s measured on
// this machine's AVX-512 Xeon, 2 threads).
bool cpu_has_native_bf16() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  static const bool native = __builtin_cpu_supports("avx512bf16");
  return native;
#else
  return true;  // elsewhere keep bf16 GEMMs as LibTorch runs them
#endif
}

constexpr int64_t kUpcastMinRows = 64;          // below this the conversion costs more than it saves
constexpr int64_t kUpcastChunkElems = 1 << 26;  // f32 copy of at most 256 MB of W at a time

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (!x.device().is_cpu() || x.numel() == 0) return torch::linear(x, w, b);
  const int64_t rows = x.numel() / x.size(-1);
  if (rows == 1 && x.scalar_type() == torch::kFloat32) {  // decoding: GEMV, not a one-row GEMM
    torch::Tensor y = torch::mv(w, x.reshape({-1}));
    if (b.defined()) y = y + b;
    std::vector<int64_t> sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return y.view(sizes);
  }
  if (x.scalar_type() == torch::kBFloat16 && rows >= kUpcastMinRows && !torch::GradMode::is_enabled() &&
      !cpu_has_native_bf16()) {
    // The same products summed in f32, as the bf16 GEMM does internally, by the faster f32 GEMM; the
    // result is rounded to bf16 like the bf16 GEMM's. W is converted a block of rows at a time so the
    // f32 copy stays small (the 7B lm_head would be 2.2 GB at once). Inference only: autograd would
    // keep every f32 copy for the backward pass.
    const torch::Tensor x32 = x.to(torch::kFloat32);
    const int64_t out = w.size(0), chunk = std::max<int64_t>(1, kUpcastChunkElems / w.size(1));
    std::vector<torch::Tensor> parts;
    for (int64_t r = 0; r < out; r += chunk) {
      const int64_t n = std::min(chunk, out - r);
      parts.push_back(torch::linear(x32, w.narrow(0, r, n).to(torch::kFloat32),
                                    b.defined() ? b.narrow(0, r, n).to(torch::kFloat32) : torch::Tensor()));
    }
    return (parts.size() == 1 ? parts[0] : torch::cat(parts, -1)).to(x.scalar_type());
  }
  return torch::linear(x, w, b);
}

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias, const torch::TensorOptions& options)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}, options));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out_features}, options));
}

void fill_normal(const torch::Tensor& t, double std) {
  torch::NoGradGuard no_grad;
  if (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64) {
    t.normal_(0.0, std);
    return;
  }
  // LibTorch 1.13's normal_ is several times slower in bf16 than in f32 on the CPU: draw f32 chunks
  // and round them into place (also the same stream of numbers as an f32 model of the same seed).
  CONDUCTOR_CHECK(t.is_contiguous(), "fill_normal on a non-contiguous tensor");
  torch::Tensor flat = t.view({-1});
  const int64_t n = flat.numel(), chunk = int64_t{1} << 22;
  for (int64_t off = 0; off < n; off += chunk) {
    const int64_t m = std::min(chunk, n - off);
    flat.narrow(0, off, m).copy_(torch::empty({m}, t.options().dtype(torch::kFloat32)).normal_(0.0, std));
  }
}

void LinearImpl::init_normal(double std) {
  torch::NoGradGuard no_grad;
  fill_normal(weight, std);
  if (bias.defined()) bias.zero_();
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = llm::linear(x, weight, bias);
  if (has_adapter() && adapter_enabled_ && !merged_) {
    torch::Tensor a = x.to(lora_A->weight.scalar_type());
    if (dropout_ > 0.0) a = torch::dropout(a, dropout_, is_training());
    y = y + (lora_B(lora_A(a)) * scaling_).to(y.scalar_type());
  }
  return y;
}

void LinearImpl::add_adapter(int64_t r, double alpha, double dropout, torch::Dtype adapter_dtype) {
  CONDUCTOR_CHECK(!has_adapter(), "layer already has an adapter");
  CONDUCTOR_CHECK(r >= 1, "rank ", r);
  r_ = r;
  scaling_ = alpha / static_cast<double>(r);
  dropout_ = dropout;
  // torch::nn::Linear initializes its weight kaiming-uniform with a = sqrt(5): peft's init of A.
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in_features_, r).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(r, out_features_).bias(false)));
  {
    torch::NoGradGuard no_grad;
    lora_B->weight.zero_();
  }
  lora_A->to(weight.device(), adapter_dtype);
  lora_B->to(weight.device(), adapter_dtype);
  weight.set_requires_grad(false);
  if (bias.defined()) bias.set_requires_grad(false);
}

void LinearImpl::set_adapter_enabled(bool enabled) {
  if (merged_ && !enabled) fail("cannot disable a merged LoRA adapter: unmerge it first");
  adapter_enabled_ = enabled;
}

torch::Tensor LinearImpl::delta_weight() const {
  return (torch::matmul(lora_B->weight, lora_A->weight) * scaling_).to(weight.scalar_type());
}

void LinearImpl::merge() {
  if (!has_adapter() || merged_) return;
  torch::NoGradGuard no_grad;
  weight.add_(delta_weight());
  merged_ = true;
}

void LinearImpl::unmerge() {
  if (!merged_) return;
  torch::NoGradGuard no_grad;
  weight.sub_(delta_weight());
  merged_ = false;
}

torch::Tensor LinearImpl::merged_weight() const {
  if (!has_adapter() || !adapter_enabled_ || merged_) return weight;
  torch::NoGradGuard no_grad;
  return weight + delta_weight();
}

}  // namespace conductor::llm
