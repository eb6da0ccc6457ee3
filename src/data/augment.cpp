#include "data/augment.hpp"

#include <algorithm>

namespace tailor {

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
    if (dx == 0 && dy == 0 && !flip) continue;
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
}

}  // namespace tailor
