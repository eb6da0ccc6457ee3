#pragma once
// The one kernel harness (house rule 1), in the manner of ggml's test-backend-ops: every kernel of
// src/kernels/ is registered once, as its fast entry point and its reference (kernels/ref.hpp)
// behind one signature, with its own grid of cases (size 1, odd sizes, sizes below, at and above
// a vector, the models' own shapes). test_kernels.cpp runs every entry over its grid under the
// instruction set that TAILOR_ISA chooses (CTest runs the binary once per path, kernels/isa.hpp).
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels.hpp"
#include "util/rng.hpp"

namespace tailor::harness {

// One case's outputs, fast and reference, and how close they must be: |fast[i] - ref[i]| <=
// bound[i] for every i, or, with no bounds, bit for bit (the same operations in the same order).
// A NaN in fast fails either way, so outputs start as NaN: a kernel must write all of its output.
struct Comparison {
  std::vector<float> fast, ref, bound;
  void append(const std::vector<float>& f, const std::vector<float>& r, const std::vector<float>& b = {}) {
    fast.insert(fast.end(), f.begin(), f.end());
    ref.insert(ref.end(), r.begin(), r.end());
    bound.insert(bound.end(), b.begin(), b.end());
  }
};

struct KernelEntry {
  std::string name;
  std::vector<std::string> cases;  // one label per grid point
  std::function<Comparison(size_t)> run;  // runs grid point i
  // Why this CPU cannot run the kernel on the chosen path (bf16 products without AVX-512 BF16),
  // asked when the test runs, after the path is chosen; empty (or no function): it can.
  std::function<std::string()> unavailable = {};
};

// The entries, by concern (each file registers its own kernels).
std::vector<KernelEntry> block_kernels();        // pools, the fused block tail, batch norm over rows
std::vector<KernelEntry> product_kernels();      // gemm, convolution, linear (oneDNN)
std::vector<KernelEntry> elementwise_kernels();  // update rules, dropout, conversions, layouts
// The convolutions' grid of shapes (kernels_products.cpp).
std::vector<kernels::Conv2dShape> conv_grid();

inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

inline std::vector<float> random_vector(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

inline std::vector<float> abs_of(const std::vector<float>& v) {
  std::vector<float> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::abs(v[i]);
  return a;
}

// rel * magnitude[i] + abs for every i: the bound of a sum that the fast kernel takes in float and
// in another order, magnitude being the sum of the absolute values of its terms (cancellation can
// make the result tiny while the rounding stays the size of the terms).
inline std::vector<float> bounds(const std::vector<float>& magnitude, double rel, double abs) {
  std::vector<float> b(magnitude.size());
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(rel * magnitude[i] + abs);
  return b;
}

// rel * max |ref| + abs for every element: for sums whose terms are the size of the outputs.
inline std::vector<float> bounds_of_scale(const std::vector<float>& ref, double rel, double abs) {
  float scale = 0;
  for (float v : ref) scale = std::max(scale, std::abs(v));
  return std::vector<float>(ref.size(), static_cast<float>(rel * scale + abs));
}

}  // namespace tailor::harness
