// Plain loops over the images (split over the threads for large copies): each element is one
// load and one store whichever way the loops run, so there is nothing to vectorise by hand.
#include "kernels/layout.hpp"

namespace tailor::kernels {

void nchw_to_nhwc(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w) {
  const int64_t s = h * w;
#pragma omp parallel for schedule(static) if (n * c * s > 65536)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < s; ++p)
      for (int64_t k = 0; k < c; ++k) y[(b * s + p) * c + k] = x[(b * c + k) * s + p];
}

void nhwc_to_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t h, int64_t w) {
  const int64_t s = h * w;
#pragma omp parallel for schedule(static) if (n * c * s > 65536)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t p = 0; p < s; ++p) y[(b * c + k) * s + p] = x[(b * s + p) * c + k];
}

}  // namespace tailor::kernels
