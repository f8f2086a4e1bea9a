#include "policies/compute.h"

#include <dlfcn.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstdlib>
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

bool tune_allocator() {
#if defined(__GLIBC__)
  for (const char* v : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"})
    if (std::getenv(v) != nullptr) return false;
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
}

void set_compute_threads(int n) {
  if (n < 1) fail("threads: expected at least 1, got ", n);
  torch::set_num_threads(n);
  if (const auto set = blas_symbol<SetThreads>("openblas_set_num_threads")) set(n);
}

}  // namespace conductor
