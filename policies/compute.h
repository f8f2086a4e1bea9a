// One knob for compute threads. LibTorch's intra-op pool and the BLAS it calls (OpenBLAS, through
// Debian's libblas alternative) each keep their own threads; OpenBLAS's spin in sched_yield while
// idle, burning the other cores' time in a run that asked for one thread (measured: 40 s of system
// time in a 49 s CartPole run). set_compute_threads(n) sets both: torch::set_num_threads(n) and
// openblas_set_num_threads(n) when OpenBLAS is the loaded BLAS.
#pragma once

namespace conductor {

void set_compute_threads(int n);
// The thread count OpenBLAS reports (openblas_get_num_threads), or -1 when OpenBLAS is not loaded.
int openblas_threads();
// True when OpenBLAS is the BLAS this process loaded.
bool openblas_loaded();

// glibc's allocator serves blocks above its mmap threshold with a fresh mmap and unmaps them on free, and
// gives the top of the heap back past its trim threshold; a tensor workload that allocates and frees
// the same few-MB activations every step then pays a page fault and a page of zeroing per 4 KiB, every
// step. Raises both (blocks up to 32 MiB from the heap, 1 GiB kept before trimming) unless the user set
// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ / MALLOC_TOP_PAD_. Peak memory is unchanged (freed blocks
// are reused). Measured on the transformer conductor's training (2 PPO updates of
// configs/conductor-small.yaml): 11.9 s user + 6.6 s system before, 6.6-7.6 s user + 1.0 s system after.
// Returns false when the allocator is not glibc's or the user's settings were kept.
bool tune_allocator();

}  // namespace conductor
