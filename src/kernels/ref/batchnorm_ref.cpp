// The oracles of kernels/batchnorm.hpp: one scalar loop per definition, same chunks.
#include <algorithm>

#include "kernels/batchnorm.hpp"
#include "kernels/ref.hpp"

namespace tailor::kernels::ref {

void batchnorm_rows_sums(const float* x, int64_t rows, int64_t c, const float* centre, float* part) {
  const int64_t chunks = batchnorm_chunks(rows);
  std::fill_n(part, chunks * c, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) {
      const float v = x[r * c + k];
      part[(r / kBatchNormChunk) * c + k] += centre ? (v - centre[k]) * (v - centre[k]) : v;
    }
}

void batchnorm_rows_affine(const float* x, const float* scale, const float* shift, float* y, int64_t rows, int64_t c,
                           bool relu) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) {
      const float t = x[r * c + k] * scale[k] + shift[k];
      y[r * c + k] = relu ? std::max(t, 0.0f) : t;
    }
}

void batchnorm_rows_backward_sums(const float* dy, const float* x, const float* relu_y, const float* mean,
                                  int64_t rows, int64_t c, float* part) {
  const int64_t chunks = batchnorm_chunks(rows);
  std::fill_n(part, chunks * 2 * c, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) {
      const int64_t e = r * c + k;
      const float m = (!relu_y || relu_y[e] > 0.0f) ? dy[e] : 0.0f;
      float* p = part + (r / kBatchNormChunk) * 2 * c;
      p[k] += m;
      p[c + k] += m * (x[e] - mean[k]);
    }
}

void batchnorm_rows_backward_dx(const float* dy, const float* x, const float* relu_y, const float* mean,
                                const float* k1, const float* k2, const float* k3, bool eval, int64_t rows, int64_t c,
                                float* dx) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) {
      const int64_t e = r * c + k;
      const float m = (!relu_y || relu_y[e] > 0.0f) ? dy[e] : 0.0f;
      dx[e] = eval ? m * k1[k] : k1[k] * ((m - k2[k]) - (x[e] - mean[k]) * k3[k]);
    }
}

}  // namespace tailor::kernels::ref
