// The harness's entries for the element-wise kernels: the optimizers' update rules, dropout
// masks, pictures to floats, bias gradients (column sums), bfloat16 copies and the layout copies.
// Each does the reference's operations in the reference's order, so every one is held to its
// reference bit for bit. Sizes: 1, below, at and above a vector of every path, and large enough
// for the threaded loops (Adam's from 32,768 weights, bf16's from 65,536 values).
#include <cstring>
#include <string>
#include <vector>

#include "kernel_harness.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gap.hpp"
#include "kernels/layout.hpp"
#include "kernels/ref.hpp"
#include "kernels/update.hpp"

namespace tailor::harness {
namespace {

const size_t kSizes[] = {1, 3, 7, 16, 17, 33, 1000, 40000, 70001};

std::vector<std::string> size_labels() {
  std::vector<std::string> l;
  for (size_t n : kSizes) l.push_back("n=" + std::to_string(n));
  return l;
}

// An update rule over [lo, hi) = [n / 5, n - n / 7) of arrays of n: weights, gradients and state
// random, the elements outside the range must stay as they were. Outputs: weights and state.
template <class Update>
KernelEntry update_entry(const std::string& name, Update update) {
  return {name, size_labels(), [update](size_t i) {
            const size_t n = kSizes[i], lo = n / 5, hi = n - n / 7;
            Rng rng(300 + i);
            const std::vector<float> grad = random_vector(n, rng);
            std::vector<float> p = random_vector(n, rng), s0 = abs_of(random_vector(n, rng)), s1 = abs_of(random_vector(n, rng));
            std::vector<float> fp = p, f0 = s0, f1 = s1;
            update(true, fp.data(), grad.data(), f0.data(), f1.data(), lo, hi);
            update(false, p.data(), grad.data(), s0.data(), s1.data(), lo, hi);
            Comparison c;
            c.append(fp, p);
            c.append(f0, s0);
            c.append(f1, s1);
            return c;
          }};
}

std::vector<float> bf16_inputs(size_t n, Rng& rng) {
  // The cases that matter, then random values over many exponents.
  const uint32_t special[] = {0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f807fffu, 0x7f800000u,
                              0xff800000u, 0x80000000u, 0x00000000u, 0x7f7fffffu, 0x7fc00001u, 0xffa00000u,
                              0x00000001u, 0x807fffffu, 0x00800000u, 0x0080ffffu};
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t u = i < std::size(special) ? special[i] : static_cast<uint32_t>(rng.next_u64());
    std::memcpy(&x[i], &u, 4);
  }
  return x;
}

// The bits of each bf16 output as a float (an exact integer), so NaN outputs compare as numbers.
std::vector<float> as_floats(const std::vector<uint16_t>& v) { return {v.begin(), v.end()}; }

}  // namespace

std::vector<KernelEntry> elementwise_kernels() {
  using namespace kernels;
  std::vector<KernelEntry> out;
  const SgdRule sgd_rules[] = {{0.1f, 0.0f, 0.0f, false, false}, {0.1f, 1e-4f, 0.9f, false, true},
                               {0.1f, 1e-4f, 0.9f, false, false}, {0.05f, 0.0f, 0.9f, true, false}};
  const char* sgd_names[] = {"sgd_update/plain", "sgd_update/momentum_first_step", "sgd_update/momentum",
                             "sgd_update/nesterov"};
  for (int k = 0; k < 4; ++k) {
    const SgdRule r = sgd_rules[k];
    out.push_back(update_entry(sgd_names[k], [r](bool fast, float* p, const float* g, float* s0, float*, size_t lo, size_t hi) {
      (fast ? sgd_update : ref::sgd_update)(r, p, g, s0, lo, hi);
    }));
  }
  // Adam at step 3 (bias corrections from b1^3, b2^3) and AdamW's decoupled decay.
  const AdamRule adam = {0.9f, 0.999f, 1e-3f / 0.271f, 1.0f / 0.05429f, 1e-8f, 1.0f, 1e-4f};
  const AdamRule adamw = {0.9f, 0.999f, 1e-3f / 0.271f, 1.0f / 0.05429f, 1e-8f, 1.0f - 1e-3f * 1e-2f, 0.0f};
  for (const auto& [name, r] : {std::pair{"adam_update", adam}, std::pair{"adam_update/adamw", adamw}})
    out.push_back(update_entry(name, [r](bool fast, float* p, const float* g, float* s0, float* s1, size_t lo, size_t hi) {
      (fast ? adam_update : ref::adam_update)(r, p, g, s0, s1, lo, hi);
    }));
  for (float mu : {0.0f, 0.9f}) {
    const RmspropRule r{1e-3f, 0.99f, 1e-8f, mu, 1e-4f};
    out.push_back(update_entry(mu == 0.0f ? "rmsprop_update" : "rmsprop_update/momentum",
                               [r](bool fast, float* p, const float* g, float* s0, float* s1, size_t lo, size_t hi) {
                                 (fast ? rmsprop_update : ref::rmsprop_update)(r, p, g, s0, s1, lo, hi);
                               }));
  }

  for (float p : {0.2f, 0.5f})
    out.push_back({"dropout_mask/p=" + std::to_string(p).substr(0, 3), size_labels(), [p](size_t i) {
                     const size_t n = kSizes[i];
                     const uint64_t base = Rng(400 + i).next_u64() * 0x9E3779B97F4A7C15ull;
                     const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(p) * 4294967296.0);
                     Comparison c{std::vector<float>(n, kNaN), std::vector<float>(n, kNaN), {}};
                     dropout_mask(base, threshold, 1.0f / (1.0f - p), c.fast.data(), n);
                     ref::dropout_mask(base, threshold, 1.0f / (1.0f - p), c.ref.data(), n);
                     return c;
                   }});
  out.push_back({"multiply", size_labels(), [](size_t i) {
                   const size_t n = kSizes[i];
                   Rng rng(500 + i);
                   const std::vector<float> x = random_vector(n, rng), s = random_vector(n, rng);
                   Comparison c{std::vector<float>(n, kNaN), std::vector<float>(n, kNaN), {}};
                   multiply(x.data(), s.data(), c.fast.data(), n);
                   ref::multiply(x.data(), s.data(), c.ref.data(), n);
                   return c;
                 }});
  out.push_back({"bytes_to_floats", size_labels(), [](size_t i) {
                   const size_t n = kSizes[i];
                   Rng rng(600 + i);
                   std::vector<uint8_t> x(n);
                   for (auto& v : x) v = static_cast<uint8_t>(rng.below(256));
                   const float scale = 1.0f / (255.0f * 0.353f), shift = -0.286f / 0.353f;
                   Comparison c{std::vector<float>(n, kNaN), std::vector<float>(n, kNaN), {}};
                   bytes_to_floats(x.data(), scale, shift, c.fast.data(), n);
                   ref::bytes_to_floats(x.data(), scale, shift, c.ref.data(), n);
                   return c;
                 }});
  // Bias gradients: (rows, cols) of a batch's output gradients.
  const size_t shapes[][2] = {{1, 1}, {1, 17}, {3, 10}, {64, 10}, {64, 117}, {7, 1}, {33, 60}};
  std::vector<std::string> shape_labels;
  for (const auto& s : shapes) shape_labels.push_back(std::to_string(s[0]) + "x" + std::to_string(s[1]));
  out.push_back({"column_sums", shape_labels, [shapes](size_t i) {
                   const size_t rows = shapes[i][0], cols = shapes[i][1];
                   Rng rng(700 + i);
                   const std::vector<float> x = random_vector(rows * cols, rng);
                   Comparison c{std::vector<float>(cols, kNaN), std::vector<float>(cols, kNaN), {}};
                   column_sums(x.data(), rows, cols, c.fast.data());
                   ref::column_sums(x.data(), rows, cols, c.ref.data());
                   return c;
                 }});
  out.push_back({"to_bf16", size_labels(), [](size_t i) {
                   const size_t n = kSizes[i];
                   Rng rng(800 + i);
                   const std::vector<float> x = bf16_inputs(n, rng);
                   std::vector<uint16_t> fast(n, 0xffff), ref(n, 0xffff);
                   to_bf16(x.data(), fast.data(), n);
                   ref::to_bf16(x.data(), ref.data(), n);
                   return Comparison{as_floats(fast), as_floats(ref), {}};
                 }});
  // A residual block's end and its backward, and the EMA of the weights.
  for (bool relu : {false, true})
    out.push_back({relu ? "add/relu" : "add", size_labels(), [relu](size_t i) {
                     const size_t n = kSizes[i];
                     Rng rng(1000 + i);
                     const std::vector<float> a = random_vector(n, rng), b = random_vector(n, rng);
                     Comparison c{std::vector<float>(n, kNaN), std::vector<float>(n, kNaN), {}};
                     add(a.data(), b.data(), c.fast.data(), n, relu);
                     ref::add(a.data(), b.data(), c.ref.data(), n, relu);
                     return c;
                   }});
  out.push_back({"relu_backward", size_labels(), [](size_t i) {
                   const size_t n = kSizes[i];
                   Rng rng(1100 + i);
                   std::vector<float> dy = random_vector(n, rng), y = random_vector(n, rng);
                   for (size_t j = 0; j < n; j += 3) y[j] = 0.0f;  // relu's zeros
                   Comparison c{std::vector<float>(n, kNaN), std::vector<float>(n, kNaN), {}};
                   relu_backward(dy.data(), y.data(), c.fast.data(), n);
                   ref::relu_backward(dy.data(), y.data(), c.ref.data(), n);
                   return c;
                 }});
  out.push_back({"accumulate", size_labels(), [](size_t i) {
                   const size_t n = kSizes[i];
                   Rng rng(1200 + i);
                   const std::vector<float> x = random_vector(n, rng);
                   Comparison c{random_vector(n, rng), {}, {}};
                   c.ref = c.fast;
                   accumulate(x.data(), c.fast.data(), n);
                   ref::accumulate(x.data(), c.ref.data(), n);
                   return c;
                 }});
  out.push_back(update_entry("ema_update", [](bool fast, float* p, const float*, float* s0, float*, size_t lo, size_t hi) {
    (fast ? ema_update : ref::ema_update)(0.999f, p, s0, lo, hi);
  }));
  // Global average pooling, planar and channels last, and its backward: (n, c, h*w).
  const int64_t maps[][3] = {{1, 1, 1}, {3, 4, 30}, {2, 17, 49}, {64, 96, 49}, {5, 32, 1}};
  std::vector<std::string> map_labels;
  for (const auto& m : maps) map_labels.push_back(std::to_string(m[0]) + "x" + std::to_string(m[1]) + "x" + std::to_string(m[2]));
  for (bool last : {false, true})
    for (bool backward : {false, true})
      out.push_back({std::string(backward ? "global_avg_pool_backward" : "global_avg_pool") + (last ? "/channels_last" : ""),
                     map_labels, [maps, last, backward](size_t i) {
                       const int64_t n = maps[i][0], c = maps[i][1], hw = maps[i][2];
                       Rng rng(1300 + i);
                       const std::vector<float> x = random_vector(backward ? n * c : n * c * hw, rng);
                       const size_t outs = static_cast<size_t>(backward ? n * c * hw : n * c);
                       Comparison cmp{std::vector<float>(outs, kNaN), std::vector<float>(outs, kNaN), {}};
                       (backward ? global_avg_pool_backward : global_avg_pool)(x.data(), cmp.fast.data(), n, c, hw, last);
                       (backward ? ref::global_avg_pool_backward : ref::global_avg_pool)(x.data(), cmp.ref.data(), n, c,
                                                                                          hw, last);
                       return cmp;
                     }});
  const int64_t layouts[][4] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {64, 32, 7, 7}, {3, 17, 4, 9}};
  std::vector<std::string> layout_labels;
  for (const auto& l : layouts)
    layout_labels.push_back(std::to_string(l[0]) + "x" + std::to_string(l[1]) + "x" + std::to_string(l[2]) + "x" +
                            std::to_string(l[3]));
  for (bool to_last : {true, false})
    out.push_back({to_last ? "nchw_to_nhwc" : "nhwc_to_nchw", layout_labels, [layouts, to_last](size_t i) {
                     const int64_t n = layouts[i][0], c = layouts[i][1], h = layouts[i][2], w = layouts[i][3];
                     Rng rng(900 + i);
                     const std::vector<float> x = random_vector(n * c * h * w, rng);
                     Comparison cmp{std::vector<float>(x.size(), kNaN), std::vector<float>(x.size(), kNaN), {}};
                     (to_last ? nchw_to_nhwc : nhwc_to_nchw)(x.data(), cmp.fast.data(), n, c, h, w);
                     (to_last ? ref::nchw_to_nhwc : ref::nhwc_to_nchw)(x.data(), cmp.ref.data(), n, c, h, w);
                     return cmp;
                   }});
  return out;
}

}  // namespace tailor::harness
