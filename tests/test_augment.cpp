// Augmentation: every augmented image is its original shifted by at most `shift` pixels (and
// mirrored, with --flip), the uncovered border filled with the background; seeded.
#include <gtest/gtest.h>

#include "data/augment.hpp"

namespace tailor {
namespace {

constexpr int kRows = 6, kCols = 7;

// Is `out` the image `in` moved by (dy, dx), mirrored first when `flip`?
bool is_moved(const float* in, const float* out, int dy, int dx, bool flip, float bg) {
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kCols; ++c) {
      const int sr = r - dy, sc = (flip ? kCols - 1 - c : c) - dx;
      const float want = (sr >= 0 && sr < kRows && sc >= 0 && sc < kCols) ? in[sr * kCols + sc] : bg;
      if (out[r * kCols + c] != want) return false;
    }
  return true;
}

TEST(Augment, ShiftsAndFlipsWithinRange) {
  const int n = 200;
  std::vector<float> x(n * kRows * kCols), orig, scratch(kRows * kCols);
  Rng fill(1);
  for (auto& v : x) v = fill.uniform(0.5f, 1.0f);  // never equal to the background
  orig = x;
  AugmentConfig cfg;
  cfg.shift = 2;
  cfg.flip = true;
  Rng rng(7);
  const float background = -1.0f;
  augment_batch(x.data(), n, 1, kRows, kCols, cfg, &background, rng, scratch.data());
  int moved = 0, flipped = 0;
  for (int i = 0; i < n; ++i) {
    const float* in = orig.data() + i * kRows * kCols;
    const float* out = x.data() + i * kRows * kCols;
    bool found = false;
    for (int dy = -2; dy <= 2 && !found; ++dy)
      for (int dx = -2; dx <= 2 && !found; ++dx)
        for (bool f : {false, true})
          if (!found && is_moved(in, out, dy, dx, f, -1.0f)) {
            found = true;
            moved += dy != 0 || dx != 0;
            flipped += f;
          }
    EXPECT_TRUE(found) << "image " << i << " is not a shift of at most 2 (mirrored or not) of its original";
  }
  EXPECT_GT(moved, n / 2);  // 24 of 25 shifts move the image
  EXPECT_GT(flipped, n / 4);
  EXPECT_LT(flipped, 3 * n / 4);
  // The same seed gives the same batch.
  std::vector<float> again = orig;
  Rng rng2(7);
  augment_batch(again.data(), n, 1, kRows, kCols, cfg, &background, rng2, scratch.data());
  EXPECT_EQ(again, x);
}

// A colour image's three planes move together, each uncovered border taking its own channel's
// background, and one channel draws the same moves as ever (the planes share one draw).
TEST(Augment, ColourPlanesMoveTogether) {
  const int n = 50, plane = kRows * kCols;
  std::vector<float> x(static_cast<size_t>(n) * 3 * plane), scratch(3 * plane);
  Rng fill(3);
  for (auto& v : x) v = fill.uniform(0.5f, 1.0f);
  std::vector<float> grey(static_cast<size_t>(n) * plane);  // the red planes alone, as a grey batch
  for (int i = 0; i < n; ++i) std::copy_n(x.begin() + i * 3 * plane, plane, grey.begin() + i * plane);
  const std::vector<float> orig = x, grey_orig = grey;
  AugmentConfig cfg;
  cfg.shift = 2;
  cfg.flip = true;
  const float backgrounds[3] = {-1.0f, -2.0f, -3.0f};
  Rng a(11), b(11);
  augment_batch(x.data(), n, 3, kRows, kCols, cfg, backgrounds, a, scratch.data());
  augment_batch(grey.data(), n, 1, kRows, kCols, cfg, backgrounds, b, scratch.data());
  int moved = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(std::equal(grey.begin() + i * plane, grey.begin() + (i + 1) * plane, x.begin() + i * 3 * plane))
        << "image " << i << ": the red plane moved unlike the grey image of the same draw";
    bool found = false;
    for (int dy = -2; dy <= 2 && !found; ++dy)
      for (int dx = -2; dx <= 2 && !found; ++dx)
        for (bool f : {false, true}) {
          bool all = !found;
          for (int c = 0; c < 3 && all; ++c)
            all = is_moved(orig.data() + (i * 3 + c) * plane, x.data() + (i * 3 + c) * plane, dy, dx, f, backgrounds[c]);
          if (all) found = true, moved += dy != 0 || dx != 0 || f;
        }
    EXPECT_TRUE(found) << "image " << i << ": its planes did not move by one shift (and flip) together";
  }
  EXPECT_GT(moved, n / 2);
  EXPECT_NE(grey, grey_orig);
}

TEST(Augment, OffLeavesTheBatchAlone) {
  std::vector<float> x(3 * kRows * kCols, 0.25f), scratch(kRows * kCols);
  Rng rng(1);
  const float background = -1.0f;
  augment_batch(x.data(), 3, 1, kRows, kCols, AugmentConfig{}, &background, rng, scratch.data());
  for (float v : x) EXPECT_EQ(v, 0.25f);
}

}  // namespace
}  // namespace tailor
