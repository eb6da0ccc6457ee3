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
  bool active() const { return shift > 0 || flip; }
};

// x (n, rows*cols), normalised; `background` is the normalised value of a black pixel; `scratch`
// holds rows*cols floats. No allocation.
void augment_batch(float* x, int64_t n, int rows, int cols, const AugmentConfig& cfg, float background, Rng& rng,
                   float* scratch);

}  // namespace tailor
