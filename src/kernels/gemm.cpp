// gemm routed to oneDNN's sgemm, and the thread setting shared with oneDNN's OpenMP runtime.
// Chosen by measurement (docs/performance.md): on this machine's cores (AMD family 1Ah, full-width
// AVX-512) oneDNN's sgemm reaches 224 GFLOP/s per core at 1024^3 against OpenBLAS 0.3.21's 126,
// and an FCN-100k epoch on one thread takes 0.18 s against 0.29 s: Debian's OpenBLAS does not know
// the core and runs its AVX2 (Haswell) kernels.
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include "kernels/kernels.hpp"

namespace tailor::kernels {

// Row-major, like cblas_sgemm with CblasRowMajor, on the threads set by set_threads (oneDNN splits
// the product itself; the split is fixed by the shape and thread count, so results repeat bit
// for bit at a given thread count). The layers' products are matmul primitives
// (dnnl_linear.cpp); this serves the bench's peak and any other plain product.
void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void set_threads(int threads) { omp_set_num_threads(threads < 1 ? 1 : threads); }

int threads() { return omp_get_max_threads(); }

ThreadScope::ThreadScope(int threads) : before_(omp_get_max_threads()) { set_threads(threads); }
ThreadScope::~ThreadScope() { omp_set_num_threads(before_); }

}  // namespace tailor::kernels
