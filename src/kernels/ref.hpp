#pragma once
// Naive reference kernels: the oracle the fast kernels are tested against. Obvious loops,
// accumulation in double; never used for training.
#include "kernels/kernels.hpp"

namespace tailor::kernels::ref {

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);

void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias,
                    float* y);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx);
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dweight,
                             float* dbias);

}  // namespace tailor::kernels::ref
