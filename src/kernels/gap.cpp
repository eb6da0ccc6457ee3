// Global average pooling (kernels/gap.hpp), compiled for each instruction set of kernels/isa.hpp.
// Channels last, a channel's values are one per row of C: the loops run over the rows and the
// compiler vectorises across the channels, each channel's sum still taken in row order. Planar,
// each plane is summed in order, a value at a time (no reassociation: the same bits as the
// reference on every path). One task per image, a range of images per thread.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gap.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/gap.hpp"
#include "kernels/parallel.hpp"

HWY_BEFORE_NAMESPACE();
namespace tailor::kernels::HWY_NAMESPACE {

void forward(const float* __restrict x, float* __restrict y, int64_t c, int64_t hw, bool channels_last, int64_t lo,
             int64_t hi) {
  const float count = static_cast<float>(hw);
  for (int64_t b = lo; b < hi; ++b) {
    float* __restrict out = y + b * c;
    const float* __restrict in = x + b * c * hw;
    if (channels_last) {
      for (int64_t k = 0; k < c; ++k) out[k] = 0.0f;
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t k = 0; k < c; ++k) out[k] += in[p * c + k];
    } else {
      for (int64_t k = 0; k < c; ++k) {
        float s = 0.0f;
        for (int64_t p = 0; p < hw; ++p) s += in[k * hw + p];
        out[k] = s;
      }
    }
    for (int64_t k = 0; k < c; ++k) out[k] /= count;
  }
}

void backward(const float* __restrict dy, float* __restrict dx, int64_t c, int64_t hw, bool channels_last, int64_t lo,
              int64_t hi) {
  const float count = static_cast<float>(hw);
  for (int64_t b = lo; b < hi; ++b) {
    const float* __restrict g = dy + b * c;
    float* __restrict out = dx + b * c * hw;
    if (channels_last) {
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t k = 0; k < c; ++k) out[p * c + k] = g[k] / count;
    } else {
      for (int64_t k = 0; k < c; ++k) {
        const float v = g[k] / count;
        for (int64_t p = 0; p < hw; ++p) out[k * hw + p] = v;
      }
    }
  }
}

}  // namespace tailor::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tailor::kernels {

HWY_EXPORT(forward);
HWY_EXPORT(backward);

void global_avg_pool(const float* x, float* y, int64_t n, int64_t c, int64_t hw, bool channels_last) {
  in_parallel(n, n * c * hw >= 65536,
              [&](int64_t lo, int64_t hi) { HWY_DYNAMIC_DISPATCH(forward)(x, y, c, hw, channels_last, lo, hi); });
}

void global_avg_pool_backward(const float* dy, float* dx, int64_t n, int64_t c, int64_t hw, bool channels_last) {
  in_parallel(n, n * c * hw >= 65536,
              [&](int64_t lo, int64_t hi) { HWY_DYNAMIC_DISPATCH(backward)(dy, dx, c, hw, channels_last, lo, hi); });
}

}  // namespace tailor::kernels
#endif  // HWY_ONCE
