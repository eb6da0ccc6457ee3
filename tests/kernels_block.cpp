// The harness's entries for the kernels of a CNN block's tail: the pools (planar and channels
// last), the fused batch norm + relu + pool pair, and batch norm over rows. One grid for all:
// size 1, 1x1 images, a row with no windows, odd sizes, channels 1/2/3/16/17/20/32 (below, at and
// above a vector of every path); random inputs, ties and all zeros.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernel_harness.hpp"
#include "kernels/batchnorm.hpp"
#include "kernels/pool.hpp"
#include "kernels/ref.hpp"

namespace tailor::harness {
namespace {

using kernels::PoolKind;

enum class Fill { random, ties, zeros };
const char* fill_name(Fill f) { return f == Fill::random ? "random" : f == Fill::ties ? "ties" : "zeros"; }

// One point of the grid: x (N, C, H, W) (stored planar or channels last, as the kernel takes it)
// and everything a kernel may read, drawn once so the fast and the reference run see the same.
struct Case {
  int64_t n, c, h, w;
  Fill fill;
  int64_t ho() const { return h / 2; }
  int64_t wo() const { return w / 2; }
  int64_t in_size() const { return n * c * h * w; }
  int64_t out_size() const { return n * c * ho() * wo(); }
};

struct Inputs {
  Case cs;
  std::vector<float> x, dy, scale, shift, mean, k1, k2, k3;
};

Inputs make_inputs(const Case& cs, uint64_t seed) {
  Rng rng(seed);
  Inputs in{cs, std::vector<float>(cs.in_size()), std::vector<float>(cs.out_size()), {}, {}, {}, {}, {}, {}};
  for (float& v : in.x)
    v = cs.fill == Fill::zeros ? 0.0f
        : cs.fill == Fill::ties ? static_cast<float>(static_cast<int>(rng.below(5)) - 2) * 0.5f
                                : rng.normal();
  for (float& v : in.dy) v = rng.normal();
  for (auto* v : {&in.scale, &in.shift, &in.mean, &in.k1, &in.k2, &in.k3}) v->resize(cs.c);
  for (int64_t k = 0; k < cs.c; ++k) {
    // Ties: scales of +-1 and no shift, so windows hold equal values and zeros of either sign.
    in.scale[k] = cs.fill == Fill::ties ? (rng.below(2) ? 1.0f : -1.0f) : rng.normal();
    in.shift[k] = cs.fill == Fill::random ? 0.5f * rng.normal() : 0.0f;
    in.mean[k] = 0.3f * rng.normal();
    in.k1[k] = rng.normal(), in.k2[k] = 0.1f * rng.normal(), in.k3[k] = 0.2f * rng.normal();
  }
  return in;
}

// A block kernel's outputs, concatenated, from the fast (true) or the reference (false) version;
// exact: the same operations in the same order, so bit for bit, else within rounding.
struct Kernel {
  std::string name;
  std::function<std::vector<float>(bool fast, const Inputs&)> run;
  bool exact;
};

// Which input of each window holds its first maximum (0..3: a, b, c, d), channels last: what
// the max-pool's winner must record.
std::vector<float> first_max(const Inputs& in, const std::vector<float>& y, const float* scale, const float* shift) {
  const Case& s = in.cs;
  std::vector<float> idx(y.size());
  for (size_t o = 0; o < y.size(); ++o) {
    const int64_t k = static_cast<int64_t>(o) % s.c, q = static_cast<int64_t>(o) / s.c;
    const int64_t j = q % s.wo(), i = (q / s.wo()) % s.ho(), b = q / (s.wo() * s.ho());
    const float* a = in.x.data() + ((b * s.h + 2 * i) * s.w + 2 * j) * s.c + k;
    int first = 3;
    for (int e = 0; e < 3; ++e) {
      const float v = a[e == 0 ? 0 : e == 1 ? s.c : s.w * s.c];
      if ((scale ? std::max(v * scale[k] + shift[k], 0.0f) : v) == y[o]) { first = e; break; }
    }
    idx[o] = static_cast<float>(first);
  }
  return idx;
}

std::vector<float> joined(std::vector<float> a, const std::vector<float>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The pool's output as the reference computes it, channels last (what a backward reads).
std::vector<float> pooled_nhwc(PoolKind kind, const Inputs& in, bool affine) {
  const Case& s = in.cs;
  std::vector<float> y(s.out_size());
  if (affine)
    kernels::ref::affine_relu_pool2x2_nhwc(kind, in.x.data(), in.scale.data(), in.shift.data(), y.data(), s.n, s.h,
                                           s.w, s.c);
  else
    kernels::ref::pool2x2_forward_nhwc(kind, in.x.data(), y.data(), s.n, s.h, s.w, s.c);
  return y;
}

kernels::TailBackward tail(PoolKind kind, const Inputs& in, const std::vector<float>& y, const std::vector<uint8_t>& win) {
  const Case& s = in.cs;
  return {kind, s.n, s.h, s.w, s.c, in.x.data(), in.scale.data(), in.shift.data(), in.mean.data(),
          y.data(), win.data(), in.dy.data()};
}

std::vector<Kernel> registry() {
  std::vector<Kernel> r;
  for (PoolKind kind : {PoolKind::max, PoolKind::avg, PoolKind::l2}) {
    const std::string k = kernels::pool_name(kind);
    const bool max = kind == PoolKind::max;
    r.push_back({"pool2x2_forward/" + k, [kind](bool fast, const Inputs& in) {
                   const Case& s = in.cs;
                   std::vector<float> y(s.out_size(), NAN);
                   if (fast) kernels::pool2x2_forward(kind, in.x.data(), y.data(), s.n * s.c, s.h, s.w);
                   else kernels::ref::pool_forward(kind, in.x.data(), y.data(), s.n * s.c, s.h, s.w, 2);
                   return y;
                 }, max});
    r.push_back({"pool2x2_backward/" + k, [kind](bool fast, const Inputs& in) {
                   const Case& s = in.cs;
                   std::vector<float> y(s.out_size()), dx(s.in_size(), NAN);
                   kernels::ref::pool_forward(kind, in.x.data(), y.data(), s.n * s.c, s.h, s.w, 2);
                   if (fast) kernels::pool2x2_backward(kind, in.x.data(), y.data(), in.dy.data(), dx.data(), s.n * s.c, s.h, s.w);
                   else kernels::ref::pool_backward(kind, in.x.data(), y.data(), in.dy.data(), dx.data(), s.n * s.c, s.h, s.w, 2);
                   return dx;
                 }, max});
    r.push_back({"pool2x2_forward_nhwc/" + k, [kind, max](bool fast, const Inputs& in) {
                   const Case& s = in.cs;
                   std::vector<float> y(s.out_size(), NAN);
                   std::vector<uint8_t> win(s.out_size(), 9);
                   if (!fast) {
                     y = pooled_nhwc(kind, in, false);
                     return max ? joined(y, first_max(in, y, nullptr, nullptr)) : y;
                   }
                   kernels::pool2x2_forward_nhwc(kind, in.x.data(), y.data(), s.n, s.h, s.w, s.c, win.data());
                   return max ? joined(y, std::vector<float>(win.begin(), win.end())) : y;
                 }, max});
    r.push_back({"pool2x2_backward_nhwc/" + k, [kind](bool fast, const Inputs& in) {
                   const Case& s = in.cs;
                   const std::vector<float> y = pooled_nhwc(kind, in, false);
                   std::vector<float> dx(s.in_size(), NAN);
                   (fast ? kernels::pool2x2_backward_nhwc : kernels::ref::pool2x2_backward_nhwc)(
                       kind, in.x.data(), y.data(), in.dy.data(), dx.data(), s.n, s.h, s.w, s.c);
                   return dx;
                 }, max});
    r.push_back({"affine_relu_pool2x2_nhwc/" + k, [kind, max](bool fast, const Inputs& in) {
                   const Case& s = in.cs;
                   if (!fast) {
                     const std::vector<float> y = pooled_nhwc(kind, in, true);
                     return max ? joined(y, first_max(in, y, in.scale.data(), in.shift.data())) : y;
                   }
                   std::vector<float> y(s.out_size(), NAN);
                   std::vector<uint8_t> win(s.out_size(), 9);
                   kernels::affine_relu_pool2x2_nhwc(kind, in.x.data(), in.scale.data(), in.shift.data(), y.data(), s.n,
                                                     s.h, s.w, s.c, max ? win.data() : nullptr);
                   return max ? joined(y, std::vector<float>(win.begin(), win.end())) : y;
                 }, max});
    // The backward pair reads the forward's output and (max) winners: both from the fast forward,
    // which the entry above holds to the reference.
    auto forward = [kind](const Inputs& in, std::vector<float>& y, std::vector<uint8_t>& win) {
      const Case& s = in.cs;
      y.assign(s.out_size(), 0.0f);
      win.assign(s.out_size(), 0);
      kernels::affine_relu_pool2x2_nhwc(kind, in.x.data(), in.scale.data(), in.shift.data(), y.data(), s.n, s.h, s.w,
                                        s.c, win.data());
    };
    r.push_back({"affine_relu_pool2x2_backward_sums_nhwc/" + k, [kind, forward](bool fast, const Inputs& in) {
                   std::vector<float> y;
                   std::vector<uint8_t> win;
                   forward(in, y, win);
                   const kernels::TailBackward tb = tail(kind, in, y, win);
                   std::vector<float> part(tb.tasks() * 2 * in.cs.c, NAN);
                   (fast ? kernels::affine_relu_pool2x2_backward_sums_nhwc
                         : kernels::ref::affine_relu_pool2x2_backward_sums_nhwc)(tb, part.data());
                   return part;
                 }, false});
    r.push_back({"affine_relu_pool2x2_backward_dx_nhwc/" + k, [kind, forward](bool fast, const Inputs& in) {
                   std::vector<float> y;
                   std::vector<uint8_t> win;
                   forward(in, y, win);
                   const kernels::TailBackward tb = tail(kind, in, y, win);
                   std::vector<float> dx(in.cs.in_size(), NAN);
                   (fast ? kernels::affine_relu_pool2x2_backward_dx_nhwc : kernels::ref::affine_relu_pool2x2_backward_dx_nhwc)(
                       tb, in.k1.data(), in.k2.data(), in.k3.data(), dx.data());
                   return dx;
                 }, true});
  }
  // Batch norm over rows: x as (N*H*W, C).
  for (bool centred : {false, true})
    r.push_back({std::string("batchnorm_rows_sums") + (centred ? "/centred" : ""),
                 [centred](bool fast, const Inputs& in) {
                   const int64_t rows = in.cs.in_size() / in.cs.c;
                   std::vector<float> part(kernels::batchnorm_chunks(rows) * in.cs.c, NAN);
                   (fast ? kernels::batchnorm_rows_sums : kernels::ref::batchnorm_rows_sums)(
                       in.x.data(), rows, in.cs.c, centred ? in.mean.data() : nullptr, part.data());
                   return part;
                 }, false});
  for (bool relu : {false, true}) {
    const std::string suffix = relu ? "/relu" : "";
    r.push_back({"batchnorm_rows_affine" + suffix, [relu](bool fast, const Inputs& in) {
                   const int64_t rows = in.cs.in_size() / in.cs.c;
                   std::vector<float> y(in.x.size(), NAN);
                   (fast ? kernels::batchnorm_rows_affine : kernels::ref::batchnorm_rows_affine)(
                       in.x.data(), in.scale.data(), in.shift.data(), y.data(), rows, in.cs.c, relu);
                   return y;
                 }, true});
    // The backward reads dy of the input's size: the x of another case stands in for it.
    auto relu_y = [relu](const Inputs& in) {
      std::vector<float> y(in.x.size());
      kernels::ref::batchnorm_rows_affine(in.x.data(), in.scale.data(), in.shift.data(), y.data(),
                                          in.cs.in_size() / in.cs.c, in.cs.c, true);
      return relu ? y : std::vector<float>{};
    };
    auto big_dy = [](const Inputs& in) {
      std::vector<float> d(in.x.size());
      for (size_t i = 0; i < d.size(); ++i) d[i] = std::sin(static_cast<float>(i) * 0.37f);
      return d;
    };
    r.push_back({"batchnorm_rows_backward_sums" + suffix, [relu_y, big_dy](bool fast, const Inputs& in) {
                   const int64_t rows = in.cs.in_size() / in.cs.c;
                   const std::vector<float> y = relu_y(in), dy = big_dy(in);
                   std::vector<float> part(kernels::batchnorm_chunks(rows) * 2 * in.cs.c, NAN);
                   (fast ? kernels::batchnorm_rows_backward_sums : kernels::ref::batchnorm_rows_backward_sums)(
                       dy.data(), in.x.data(), y.empty() ? nullptr : y.data(), in.mean.data(), rows, in.cs.c, part.data());
                   return part;
                 }, false});
    for (bool eval : {false, true})
      r.push_back({"batchnorm_rows_backward_dx" + suffix + (eval ? "/eval" : ""),
                   [relu_y, big_dy, eval](bool fast, const Inputs& in) {
                     const int64_t rows = in.cs.in_size() / in.cs.c;
                     const std::vector<float> y = relu_y(in), dy = big_dy(in);
                     std::vector<float> dx(in.x.size(), NAN);
                     (fast ? kernels::batchnorm_rows_backward_dx : kernels::ref::batchnorm_rows_backward_dx)(
                         dy.data(), in.x.data(), y.empty() ? nullptr : y.data(), in.mean.data(), in.k1.data(),
                         in.k2.data(), in.k3.data(), eval, rows, in.cs.c, dx.data());
                     return dx;
                   }, true});
  }
  return r;
}

std::vector<Case> grid() {
  std::vector<Case> g;
  const int64_t shapes[][4] = {{1, 1, 2, 2}, {1, 1, 1, 1}, {2, 3, 1, 4}, {2, 3, 5, 7}, {1, 16, 4, 4},
                               {2, 17, 7, 7}, {3, 16, 28, 28}, {2, 32, 14, 14}, {2, 20, 9, 6}, {1, 2, 2, 66}};
  for (const auto& s : shapes)
    for (Fill f : {Fill::random, Fill::ties, Fill::zeros}) g.push_back({s[0], s[1], s[2], s[3], f});
  return g;
}

}  // namespace

// Each fast kernel against its reference on the same inputs, drawn per grid point:
// |fast - ref| <= 1e-5 * max |ref| + 1e-6 (sums in another order), or bit for bit.
std::vector<KernelEntry> block_kernels() {
  std::vector<KernelEntry> out;
  std::vector<std::string> labels;
  for (const Case& cs : grid())
    labels.push_back(std::to_string(cs.n) + "x" + std::to_string(cs.c) + "x" + std::to_string(cs.h) + "x" +
                     std::to_string(cs.w) + " " + fill_name(cs.fill));
  for (const Kernel& k : registry())
    out.push_back({k.name, labels, [k](size_t i) {
                     const Inputs in = make_inputs(grid()[i], 1000 + i);
                     Comparison c;
                     c.fast = k.run(true, in);
                     c.ref = k.run(false, in);
                     if (!k.exact) c.bound = bounds_of_scale(c.ref, 1e-5, 1e-6);
                     return c;
                   }});
  return out;
}

}  // namespace tailor::harness
