#include <algorithm>

#include "kernels/pool.hpp"

namespace tailor::kernels::ref {

void maxpool2x2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        const float* a = x + (p * h + 2 * i) * w + 2 * j;
        float m = a[0];
        if (a[1] > m) m = a[1];
        if (a[w] > m) m = a[w];
        if (a[w + 1] > m) m = a[w + 1];
        y[(p * ho + i) * wo + j] = m;
      }
}

void maxpool2x2_backward(const float* x, const float* y, const float* dy, float* dx, int64_t planes, int64_t h,
                         int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
  std::fill_n(dx, planes * h * w, 0.0f);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        const int64_t o = (p * ho + i) * wo + j;
        const int64_t base = (p * h + 2 * i) * w + 2 * j;
        for (int64_t off : {int64_t{0}, int64_t{1}, w, w + 1})
          if (x[base + off] == y[o]) {
            dx[base + off] = dy[o];
            break;
          }
      }
}

void affine_relu_maxpool2x2(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t c,
                            int64_t h, int64_t w) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t p = 0; p < n * c; ++p) {
    const float a = scale[p % c], b = shift[p % c];
    auto v = [&](int64_t i, int64_t j) { return std::max(x[(p * h + i) * w + j] * a + b, 0.0f); };
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        float m = v(2 * i, 2 * j);
        m = std::max(m, v(2 * i, 2 * j + 1));
        m = std::max(m, v(2 * i + 1, 2 * j));
        m = std::max(m, v(2 * i + 1, 2 * j + 1));
        y[(p * ho + i) * wo + j] = m;
      }
  }
}

}  // namespace tailor::kernels::ref
