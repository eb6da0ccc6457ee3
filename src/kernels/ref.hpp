#pragma once
// The reference kernels: the oracle every fast kernel of src/kernels/ is tested against, on every
// instruction set (tests/test_kernels.cpp, one harness). Obvious loops in the definitions' order,
// products accumulated in double; built for the baseline and never dispatched. Only the pool of a
// kernel size other than 2 (a layer the PyTorch reference files use) trains through one.
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.hpp"
#include "kernels/pool.hpp"
#include "kernels/update.hpp"

namespace tailor::kernels::ref {

// Products (kernels.hpp), in ref/products_ref.cpp.
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);
void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias,
                    float* y);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx);
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dweight,
                             float* dbias);

// Pools (pool.hpp), in ref/pool_ref.cpp. Any kernel size k, stride k, floor mode (the layer's
// general case, and the oracle for k = 2).
void pool_forward(PoolKind kind, const float* x, float* y, int64_t planes, int64_t h, int64_t w, int64_t k);
void pool_backward(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t planes,
                   int64_t h, int64_t w, int64_t k);
// Channels last: transpose to planes, the planar reference above, transpose back.
void pool2x2_forward_nhwc(PoolKind kind, const float* x, float* y, int64_t n, int64_t h, int64_t w, int64_t c);
void pool2x2_backward_nhwc(PoolKind kind, const float* x, const float* y, const float* dy, float* dx, int64_t n,
                           int64_t h, int64_t w, int64_t c);
void affine_relu_pool2x2_nhwc(PoolKind kind, const float* x, const float* scale, const float* shift, float* y,
                              int64_t n, int64_t h, int64_t w, int64_t c);
// The unfused steps: a = relu(x * scale + shift), the planar pool backward, m = da where t > 0.
void affine_relu_pool2x2_backward_sums_nhwc(const TailBackward& b, float* part);
void affine_relu_pool2x2_backward_dx_nhwc(const TailBackward& b, const float* k1, const float* k2, const float* k3,
                                          float* dx);

// Layout copies (layout.hpp), in ref/pool_ref.cpp.
void nchw_to_nhwc(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w);
void nhwc_to_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w);

// Batch norm over rows (batchnorm.hpp), in ref/batchnorm_ref.cpp: one scalar loop per definition,
// the same chunks.
void batchnorm_rows_sums(const float* x, int64_t rows, int64_t c, const float* centre, float* part);
void batchnorm_rows_affine(const float* x, const float* scale, const float* shift, float* y, int64_t rows, int64_t c,
                           bool relu);
void batchnorm_rows_backward_sums(const float* dy, const float* x, const float* relu_y, const float* mean,
                                  int64_t rows, int64_t c, float* part);
void batchnorm_rows_backward_dx(const float* dy, const float* x, const float* relu_y, const float* mean,
                                const float* k1, const float* k2, const float* k3, bool eval, int64_t rows, int64_t c,
                                float* dx);

// Update rules (update.hpp) and element-wise kernels (elementwise.hpp), in ref/elementwise_ref.cpp.
void sgd_update(const SgdRule& r, float* p, const float* grad, float* buf, size_t lo, size_t hi);
void adam_update(const AdamRule& r, float* p, const float* grad, float* m, float* v, size_t lo, size_t hi);
void rmsprop_update(const RmspropRule& r, float* p, const float* grad, float* sq, float* buf, size_t lo, size_t hi);
void dropout_mask(uint64_t base, uint64_t threshold, float keep_scale, float* scale, size_t n);
void multiply(const float* x, const float* s, float* y, size_t n);
void bytes_to_floats(const uint8_t* x, float scale, float shift, float* y, size_t n);
void column_sums(const float* x, size_t rows, size_t cols, float* out);
void to_bf16(const float* x, uint16_t* y, size_t n);
void add(const float* a, const float* b, float* y, size_t n, bool relu);
void relu_backward(const float* dy, const float* y, float* dx, size_t n);
void accumulate(const float* x, float* y, size_t n);
void ema_update(float decay, const float* p, float* ema, size_t lo, size_t hi);

// Global average pooling (gap.hpp), in ref/elementwise_ref.cpp: planar, any layout through a copy.
void global_avg_pool(const float* x, float* y, int64_t n, int64_t c, int64_t hw, bool channels_last);
void global_avg_pool_backward(const float* dy, float* dx, int64_t n, int64_t c, int64_t hw, bool channels_last);

}  // namespace tailor::kernels::ref
