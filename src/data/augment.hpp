#pragma once
// Training-time augmentation of a gathered batch, in place and seeded: random shifts (the image
// moves by up to `shift` pixels each way, the uncovered border takes the background value) and
// horizontal flips (clothes are left-right symmetric; digits are not, so both are opt-in).
#include <cstdint>

#include "util/rng.hpp"

namespace tailor {

struct AugmentConfig {
  int shift = 0;      // pixels, 0: off
  bool flip = false;  // mirror left-right with probability 1/2
  // Random erasing (Zhong et al. 2017) with this probability: a rectangle of 2-40% of the picture,
  // aspect ratio 0.3 to 3.3 (log-uniform), at a uniform place, set to 0 (the normalised mean) in
  // every plane; 0: off.
  float erase = 0;
  bool active() const { return shift > 0 || flip || erase > 0; }
};

// x (n, channels*rows*cols), normalised, each image its planes in turn (all moved alike);
// background[c] is the normalised value of a black pixel in channel c; `scratch` holds
// channels*rows*cols floats. No allocation. One channel draws what it always drew; without
// erasing, every image draws what it drew before erasing existed.
void augment_batch(float* x, int64_t n, int channels, int rows, int cols, const AugmentConfig& cfg,
                   const float* background, Rng& rng, float* scratch);

// x (n, channels*rows*cols) -> each image mirrored left-right, in every plane (test-time flips).
void flip_batch(float* x, int64_t n, int channels, int rows, int cols);

}  // namespace tailor
