#pragma once
// The one seam to the maths libraries. Nothing outside src/kernels/ includes oneDNN, Highway or
// intrinsics. This header: the products through oneDNN; pools (pool.hpp), batch norm
// (batchnorm.hpp), update rules (update.hpp), element-wise kernels (elementwise.hpp) and layout
// copies (layout.hpp) have their own, and the instruction set they run (isa.hpp). Every fast
// kernel has a naive twin in kernels::ref (kernels/ref.hpp), the test oracle.
// All matrices are row-major.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tailor::kernels {

// C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C, op(X) = X or X^T.
// Routed to oneDNN sgemm (kernels/gemm.cpp).
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);

// The threads of the kernels the calling thread runs: OpenMP's own setting for that thread (its
// nthreads-var), which oneDNN reads too, so tailor keeps no copy of it. Each thread of a process
// has its own: trainings, replicas and server workers in their threads do not see each other's.
void set_threads(int threads);
int threads();
// Sets the calling thread's threads for its life and restores the setting it found (a library
// call leaves its caller's thread as it was).
class ThreadScope {
 public:
  explicit ThreadScope(int threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int before_;
};

// 2-D convolution, square kernel, symmetric zero padding, stride 1 or more, in groups (groups ==
// cin == cout: depthwise). Weights in PyTorch's layout (Cout, Cin / groups, K, K); activations
// (N, C, H, W) in PyTorch's memory order, or with channels_last in (N, H, W, C) order (the order
// a CNN's convolution blocks keep end to end: no reorders).
struct Conv2dShape {
  int n = 1, cin = 1, h = 1, w = 1, cout = 1, k = 3, pad = 1;
  int stride = 1, groups = 1;
  bool channels_last = false;
  // With channels_last: x and dx stay (N, C, H, W) in PyTorch's order (a model's colour input),
  // only y and dy are (N, H, W, C).
  bool planar_input = false;
  // Products in bfloat16 with float accumulation: x, weight and dy are converted inside (x once
  // for forward and backward-weights, dy once for both backward products); every array at the
  // seam stays float. Only where has_bf16(); a convolution of fewer than 8 input channels stays
  // float (measured slower in bf16).
  bool bf16 = false;
  // The calling thread's thread setting (threads()) when the primitives were made: oneDNN sizes
  // them for it, so a layer keeps one kernel per setting (a data-parallel step's one-thread
  // replicas, evaluation on all threads).
  int threads = 1;
  int ho() const { return (h + 2 * pad - k) / stride + 1; }
  int wo() const { return (w + 2 * pad - k) / stride + 1; }
};

// oneDNN convolution primitives for one shape, created once and reused every step (no
// allocation after construction).
//   x (N, Cin, H, W), weight (Cout, Cin / groups, K, K), bias (Cout), y (N, Cout, Ho, Wo)
class Conv2dKernel {
 public:
  explicit Conv2dKernel(const Conv2dShape& s);
  ~Conv2dKernel();
  Conv2dKernel(const Conv2dKernel&) = delete;
  Conv2dKernel& operator=(const Conv2dKernel&) = delete;

  // A step calls, in this order: forward(x), backward_weights(x, dy), backward_data(dy) (the
  // last two with the same x and dy; backward_data may be left out). Converted or re-laid copies
  // of x and dy made by one call are reused by the next.
  const Conv2dShape& shape() const { return shape_; }
  void forward(const float* x, const float* weight, const float* bias, float* y);
  // dweight = sum over batch of dy * x patches, dbias = sum of dy; overwrites both.
  void backward_weights(const float* x, const float* dy, float* dweight, float* dbias);
  // dx = conv_transpose(dy, weight); overwrites dx.
  void backward_data(const float* dy, const float* weight, float* dx);
  // The oneDNN implementation chosen for the forward pass, e.g. "jit:avx512_core".
  std::string impl_name() const;

 private:
  struct Impl;
  Conv2dShape shape_;
  std::unique_ptr<Impl> impl_;
};

// A fully connected layer's three products through oneDNN matmul primitives, made once per shape
// (the weights read in PyTorch's (out, in) layout as they are; the bias added by the forward
// primitive). x (N, in), weight (out, in), bias (out), y and dy (N, out).
//   bf16: the products take bfloat16 copies of x, weight and dy (made here, each once per step)
//   and accumulate in float; every array at the seam stays float (mixed precision with float
//   master weights). Only where the CPU has bf16 dot products (has_bf16()).
struct LinearShape {
  int n = 1, in = 1, out = 1;
  bool bf16 = false;
  int threads = 1;  // as Conv2dShape::threads
};

class LinearKernel {
 public:
  explicit LinearKernel(const LinearShape& s);
  ~LinearKernel();
  LinearKernel(const LinearKernel&) = delete;
  LinearKernel& operator=(const LinearKernel&) = delete;

  // A step calls, in this order: forward(x, weight), backward_weights(x, dy), backward_data(dy,
  // weight) (the same x, weight and dy; backward_data may be left out): in bf16 the copies made by
  // one call are used by the next.
  const LinearShape& shape() const { return shape_; }
  // y = x weight^T + bias.
  void forward(const float* x, const float* weight, const float* bias, float* y);
  // dweight = dy^T x and dbias = column sums of dy, overwritten.
  void backward_weights(const float* x, const float* dy, float* dweight, float* dbias);
  // dx = dy weight, overwritten.
  void backward_data(const float* dy, const float* weight, float* dx);

 private:
  struct Impl;
  LinearShape shape_;
  std::unique_ptr<Impl> impl_;
};

// Whether this CPU runs oneDNN's bf16 matmul and convolution natively (AVX-512 BF16 or AMX).
bool has_bf16();
// The instruction set oneDNN detects and uses on this CPU ("avx2", "avx512_core_bf16",
// "avx512_core_amx", ...), and oneDNN's version ("2.6.3"): the headers of speed figures.
std::string cpu_isa();
std::string onednn_version();

}  // namespace tailor::kernels
