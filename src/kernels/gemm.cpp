// gemm routed to oneDNN's sgemm, and the thread setting shared with oneDNN's OpenMP runtime.
// Chosen by measurement (docs/performance.md): on this machine's cores (AMD family 1Ah, full-width
// AVX-512) oneDNN's sgemm reaches 224 GFLOP/s per core at 1024^3 against OpenBLAS 0.3.21's 126,
// and an FCN-100k epoch on one thread takes 0.18 s against 0.29 s: Debian's OpenBLAS does not know
// the core and runs its AVX2 (Haswell) kernels.
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <algorithm>

#include "kernels/kernels.hpp"

namespace tailor::kernels {

namespace {
// Per calling thread, as OpenMP's own thread-count setting is: server threads set 1 each.
thread_local int g_threads = 1;
}

namespace {

void sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
           int ldb, float beta, float* c, int ldc) {
  // Row-major, like cblas_sgemm with CblasRowMajor. Inside the OpenMP regions below it runs on
  // the calling thread; outside them on the threads set by set_threads.
  dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

// Threads split C into blocks of whole rows (or whole columns when C is short and wide) and run
// one single-threaded sgemm each, on the OpenMP threads the rest of the step uses. The split is
// fixed by the shape and thread count, so results are bit-identical run to run at a given thread
// count (not across thread counts: the smaller problems are blocked differently).
void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  const double flops = 2.0 * m * n * k;
  const int t = g_threads;
  if (t <= 1 || flops < 4e5 || (m < 2 * t && n < 32 * t)) {
    sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const bool by_rows = m >= 2 * t && m * 8 >= n;
#pragma omp parallel num_threads(t)
  {
    const int id = omp_get_thread_num(), nt = omp_get_num_threads();
    if (by_rows) {
      const int lo = static_cast<int>(static_cast<long>(m) * id / nt), hi = static_cast<int>(static_cast<long>(m) * (id + 1) / nt);
      if (hi > lo)
        sgemm(ta, tb, hi - lo, n, k, alpha, ta ? a + lo : a + static_cast<long>(lo) * lda, lda, b, ldb, beta,
              c + static_cast<long>(lo) * ldc, ldc);
    } else {
      // Column blocks rounded to 16 floats so each thread writes whole cache lines.
      const int blocks = (n + 15) / 16;
      const int lo = std::min(n, 16 * static_cast<int>(static_cast<long>(blocks) * id / nt));
      const int hi = std::min(n, 16 * static_cast<int>(static_cast<long>(blocks) * (id + 1) / nt));
      if (hi > lo)
        sgemm(ta, tb, m, hi - lo, k, alpha, a, lda, tb ? b + static_cast<long>(lo) * ldb : b + lo, ldb, beta, c + lo,
              ldc);
    }
  }
}

void set_threads(int threads) {
  g_threads = threads < 1 ? 1 : threads;
  omp_set_num_threads(g_threads);
}

int threads() { return g_threads; }

}  // namespace tailor::kernels
