#include "policies/compute.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include "core/error.h"

namespace conductor {

namespace {
using SetThreads = void (*)(int);
using GetThreads = int (*)();
template <class F>
F blas_symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

bool openblas_loaded() { return blas_symbol<GetThreads>("openblas_get_num_threads") != nullptr; }

int openblas_threads() {
  const auto get = blas_symbol<GetThreads>("openblas_get_num_threads");
  return get ? get() : -1;
}

void set_compute_threads(int n) {
  if (n < 1) fail("threads: expected at least 1, got ", n);
  torch::set_num_threads(n);
  if (const auto set = blas_symbol<SetThreads>("openblas_set_num_threads")) set(n);
}

}  // namespace conductor
