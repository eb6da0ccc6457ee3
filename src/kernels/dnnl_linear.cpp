// Fully connected products through oneDNN matmul primitives. Measured against sgemm calls split
// over the threads (docs/performance.md): the FCN-100k's first layer, (64, 784) x (784, 117), takes
// 31 us on two threads as a matmul reading the (out, in) weights as they are, against 40 us for
// sgemm with a transposed B; in bf16, 17 us.
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <cstring>
#include <vector>

#include "kernels/dnnl_exec.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/kernels.hpp"

namespace tailor::kernels {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

// A primitive with its scratchpad allocated once (user scratchpad mode), so a step allocates
// nothing inside oneDNN either.
struct Product {
  dnnl::matmul prim;
  dnnl::memory scratch;

  void init(const dnnl::memory::desc& a, const dnnl::memory::desc& b, const dnnl::memory::desc* bias,
            const dnnl::memory::desc& c, const dnnl::engine& eng) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto d = bias ? dnnl::matmul::desc(a, b, *bias, c) : dnnl::matmul::desc(a, b, c);
    dnnl::matmul::primitive_desc pd(d, attr, eng);
    prim = dnnl::matmul(pd);
    scratch = dnnl::memory(pd.scratchpad_desc(), eng);
  }
};

// float -> bfloat16 copy into a buffer allocated once (to_bf16: round to nearest even; a oneDNN
// reorder took 30 us for the CNN-100k's 94k head weights, this loop a few).
struct ToBf16 {
  dnnl::memory to;
  size_t count = 0;
  void init(const dnnl::memory::dims& dims, const dnnl::engine& eng) {
    to = dnnl::memory({dims, dt::bf16, tag::ab}, eng);
    count = static_cast<size_t>(dims[0] * dims[1]);
  }
  void operator()(dnnl::stream&, const float* p) {
    to_bf16(p, static_cast<uint16_t*>(to.get_data_handle()), count);
  }
};

}  // namespace

struct LinearKernel::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  Product fwd, wgrad, dgrad;
  // Handles for the float arrays at the seam (and the bf16 copies when converting).
  dnnl::memory x, w_t, w, bias, y, dy, dy_t, dw, dx;
  ToBf16 x16, w16, dy16;
};

LinearKernel::LinearKernel(const LinearShape& s) : shape_(s), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const auto& e = m.engine;
  const dnnl::memory::dim n = s.n, in = s.in, out = s.out;
  const dt t = s.bf16 ? dt::bf16 : dt::f32;
  // Operand descriptors: x (n, in); the weights (out, in) seen as (in, out) for the forward
  // product (format ba), as they are for dx; dy (n, out) seen as (out, n) for dweight.
  const dnnl::memory::desc x_md({n, in}, t, tag::ab), wt_md({in, out}, t, tag::ba), w_md({out, in}, t, tag::ab);
  const dnnl::memory::desc dy_md({n, out}, t, tag::ab), dyt_md({out, n}, t, tag::ba);
  const dnnl::memory::desc y_md({n, out}, dt::f32, tag::ab), bias_md({1, out}, dt::f32, tag::ab);
  const dnnl::memory::desc dw_md({out, in}, dt::f32, tag::ab), dx_md({n, in}, dt::f32, tag::ab);
  m.fwd.init(x_md, wt_md, &bias_md, y_md, e);
  m.wgrad.init(dyt_md, x_md, nullptr, dw_md, e);
  m.dgrad.init(dy_md, w_md, nullptr, dx_md, e);
  if (s.bf16) {
    m.x16.init({n, in}, e);
    m.w16.init({out, in}, e);
    m.dy16.init({n, out}, e);
    // The bf16 products read the converted copies; (in, out) and (out, n) views of the same bytes.
    m.x = m.x16.to;
    m.w = m.w16.to;
    m.w_t = dnnl::memory(wt_md, e, m.w16.to.get_data_handle());
    m.dy = m.dy16.to;
    m.dy_t = dnnl::memory(dyt_md, e, m.dy16.to.get_data_handle());
  } else {
    m.x = dnnl::memory(x_md, e, DNNL_MEMORY_NONE);
    m.w = dnnl::memory(w_md, e, DNNL_MEMORY_NONE);
    m.w_t = dnnl::memory(wt_md, e, DNNL_MEMORY_NONE);
    m.dy = dnnl::memory(dy_md, e, DNNL_MEMORY_NONE);
    m.dy_t = dnnl::memory(dyt_md, e, DNNL_MEMORY_NONE);
  }
  m.bias = dnnl::memory(bias_md, e, DNNL_MEMORY_NONE);
  m.y = dnnl::memory(y_md, e, DNNL_MEMORY_NONE);
  m.dw = dnnl::memory(dw_md, e, DNNL_MEMORY_NONE);
  m.dx = dnnl::memory(dx_md, e, DNNL_MEMORY_NONE);
}

LinearKernel::~LinearKernel() = default;

void LinearKernel::forward(const float* x, const float* weight, const float* bias, float* y) {
  Impl& m = *impl_;
  if (shape_.bf16) {
    m.x16(m.stream, x);
    m.w16(m.stream, weight);
  } else {
    m.x.set_data_handle(const_cast<float*>(x));
    m.w_t.set_data_handle(const_cast<float*>(weight));
  }
  m.bias.set_data_handle(const_cast<float*>(bias));
  m.y.set_data_handle(y);
  run<5>(m.fwd.prim, m.stream, {{{DNNL_ARG_SRC, m.x.get()},
                                 {DNNL_ARG_WEIGHTS, m.w_t.get()},
                                 {DNNL_ARG_BIAS, m.bias.get()},
                                 {DNNL_ARG_DST, m.y.get()},
                                 {DNNL_ARG_SCRATCHPAD, m.fwd.scratch.get()}}});
  m.stream.wait();
}

void LinearKernel::backward_weights(const float* x, const float* dy, float* dweight, float* dbias) {
  Impl& m = *impl_;
  if (shape_.bf16) {
    m.dy16(m.stream, dy);  // x16 still holds the forward's x
  } else {
    m.x.set_data_handle(const_cast<float*>(x));
    m.dy_t.set_data_handle(const_cast<float*>(dy));
  }
  m.dw.set_data_handle(dweight);
  run<4>(m.wgrad.prim, m.stream, {{{DNNL_ARG_SRC, m.dy_t.get()},
                                   {DNNL_ARG_WEIGHTS, m.x.get()},
                                   {DNNL_ARG_DST, m.dw.get()},
                                   {DNNL_ARG_SCRATCHPAD, m.wgrad.scratch.get()}}});
  m.stream.wait();
  column_sums(dy, static_cast<size_t>(shape_.n), static_cast<size_t>(shape_.out), dbias);  // rows in order
}

void LinearKernel::backward_data(const float* dy, const float* weight, float* dx) {
  Impl& m = *impl_;
  if (!shape_.bf16) {  // in bf16 the copies of dy (backward_weights) and weight (forward) are current
    m.dy.set_data_handle(const_cast<float*>(dy));
    m.w.set_data_handle(const_cast<float*>(weight));
  }
  m.dx.set_data_handle(dx);
  run<4>(m.dgrad.prim, m.stream, {{{DNNL_ARG_SRC, m.dy.get()},
                                   {DNNL_ARG_WEIGHTS, m.w.get()},
                                   {DNNL_ARG_DST, m.dx.get()},
                                   {DNNL_ARG_SCRATCHPAD, m.dgrad.scratch.get()}}});
  m.stream.wait();
}

std::string cpu_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other (oneDNN cpu_isa " + std::to_string(static_cast<int>(dnnl::get_effective_cpu_isa())) + ")";
  }
}

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

bool has_bf16() {
  static const bool yes = [] {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
  }();
  return yes;
}

}  // namespace tailor::kernels
