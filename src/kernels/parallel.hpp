#pragma once
// The threads of a kernel: its tasks [0, n) cut into one contiguous range per OpenMP thread, each
// range handed to the kernel's body for the chosen instruction set. The parallel region lives
// here, in code built for the baseline, and not inside the bodies Highway compiles per target:
// clang 14 outlines an OpenMP region without its function's target attributes and then cannot
// compile the AVX-512 body in it ("Do not know how to split the result of this operator"); GCC
// can, but one place for the threads suits both. The ranges depend on the thread count, so a body's
// results must not (each task is computed alone).
#include <omp.h>

#include <cstdint>

namespace tailor::kernels {

template <class Body>
void in_parallel(int64_t n, bool worth_threads, Body body) {
  if (!worth_threads || n <= 1 || omp_get_max_threads() == 1) {
    if (n > 0) body(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
    const int64_t lo = n * t / threads, hi = n * (t + 1) / threads;
    if (lo < hi) body(lo, hi);
  }
}

}  // namespace tailor::kernels
