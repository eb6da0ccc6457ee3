#include "data/augment.hpp"

#include <algorithm>
#include <cmath>

namespace tailor {

namespace {

struct Rect {
  int top = 0, left = 0, h = 0, w = 0;  // h == 0: nothing erased
};

// Random erasing's rectangle (Zhong et al. 2017): with probability p, up to ten tries at an area of
// 2-40% of the picture and an aspect ratio log-uniform in [0.3, 1/0.3] that fits inside it.
Rect draw_rectangle(int rows, int cols, float p, Rng& rng) {
  if (rng.uniform() >= p) return {};
  const double area = static_cast<double>(rows) * cols, lo = std::log(0.3), hi = -lo;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (0.02 + 0.38 * rng.uniform());
    const double ratio = std::exp(lo + (hi - lo) * rng.uniform());
    const int h = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int w = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (h < 1 || w < 1 || h >= rows || w >= cols) continue;
    Rect r;
    r.h = h, r.w = w;
    r.top = static_cast<int>(rng.below(static_cast<uint64_t>(rows - h + 1)));
    r.left = static_cast<int>(rng.below(static_cast<uint64_t>(cols - w + 1)));
    return r;
  }
  return {};
}

}  // namespace

void augment_batch(float* x, int64_t n, int channels, int rows, int cols, const AugmentConfig& cfg,
                   const float* background, Rng& rng, float* scratch) {
  if (!cfg.active()) return;
  const int64_t plane = static_cast<int64_t>(rows) * cols, p = plane * channels;
  const uint64_t span = 2 * static_cast<uint64_t>(cfg.shift) + 1;
  for (int64_t i = 0; i < n; ++i) {
    float* img = x + i * p;
    const int dy = cfg.shift ? static_cast<int>(rng.below(span)) - cfg.shift : 0;
    const int dx = cfg.shift ? static_cast<int>(rng.below(span)) - cfg.shift : 0;
    const bool flip = cfg.flip && (rng.next_u64() >> 63);
    // Drawn only when erasing is on: other runs draw exactly what they drew before it existed.
    const Rect erase = cfg.erase > 0 ? draw_rectangle(rows, cols, cfg.erase, rng) : Rect{};
    if (dx != 0 || dy != 0 || flip) {
      std::copy_n(img, p, scratch);
      // out[r][c] = in[r - dy][c' - dx], c' = c or its mirror, in every plane
      for (int ch = 0; ch < channels; ++ch) {
        const float bg = background[ch];
        for (int r = 0; r < rows; ++r) {
          const int sr = r - dy;
          float* out = img + ch * plane + static_cast<int64_t>(r) * cols;
          if (sr < 0 || sr >= rows) {
            std::fill_n(out, cols, bg);
            continue;
          }
          const float* in = scratch + ch * plane + static_cast<int64_t>(sr) * cols;
          for (int c = 0; c < cols; ++c) {
            const int sc = (flip ? cols - 1 - c : c) - dx;
            out[c] = (sc >= 0 && sc < cols) ? in[sc] : bg;
          }
        }
      }
    }
    for (int ch = 0; ch < channels && erase.h > 0; ++ch)
      for (int r = erase.top; r < erase.top + erase.h; ++r)
        std::fill_n(img + ch * plane + static_cast<int64_t>(r) * cols + erase.left, erase.w, 0.0f);
  }
}

void flip_batch(float* x, int64_t n, int channels, int rows, int cols) {
  for (int64_t r = 0; r < n * channels * rows; ++r) std::reverse(x + r * cols, x + (r + 1) * cols);
}

}  // namespace tailor
