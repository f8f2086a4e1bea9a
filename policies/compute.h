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

}  // namespace conductor
