#pragma once
// The only source of randomness: a seeded SplitMix64 stream. Its output is fixed by the seed on
// every platform (std::normal_distribution is not), so a run is reproduced by its recorded seed.
#include <cmath>
#include <cstdint>

namespace tailor {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}
  // The whole state: Rng(r.state()) continues r's stream exactly (resume state files).
  uint64_t state() const { return state_; }

  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 24 random bits, exactly representable as float.
  float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n); n > 0. Multiply-shift (Lemire) without the rejection step:
  // the bias is below 2^-32 for the sizes used here.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<__uint128_t>(next_u64()) * n) >> 64);
  }
  // Standard normal by Box-Muller (one value per call; simple beats fast for initialisation).
  float normal() {
    double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  // The SplitMix64 output function alone: a counter-based generator. hash(base + i) for
  // i = 0, 1, ... is a good random stream whose elements can be made in any order (and so in
  // vector registers).
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // A child stream whose sequence does not overlap this one's in practice.
  Rng split(uint64_t salt) { return Rng(next_u64() ^ (salt * 0xD6E8FEB86659FD93ull)); }

 private:
  uint64_t state_;
};

}  // namespace tailor
