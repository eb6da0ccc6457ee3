// OpenBLAS routing for gemm and the thread setting shared with oneDNN's OpenMP runtime.
#include <cblas.h>
#include <omp.h>

#include "kernels/kernels.hpp"

namespace tailor::kernels {

namespace {
int g_threads = 1;
}

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void set_threads(int threads) {
  g_threads = threads < 1 ? 1 : threads;
  // OpenBLAS stays on the calling thread: its own pool and OpenMP's spinning workers would fight
  // over the same cores (measured: a third of a CNN epoch lost to sched_yield and spin-waits).
  // The GEMMs here are small; parallelism comes from OpenMP around them.
  openblas_set_num_threads(1);
  omp_set_num_threads(g_threads);
}

int threads() { return g_threads; }

}  // namespace tailor::kernels
