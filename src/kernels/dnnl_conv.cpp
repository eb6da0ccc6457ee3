// Convolution through oneDNN. Activations and weights stay in PyTorch's plain layouts (nchw,
// oihw) at the seam so the layer contract and the optimizer's flat arena see ordinary arrays.
// Inside, each primitive gets the layout it is fastest in (format_tag::any, usually nChw16c for
// the AVX-512 jit kernels) and reorders to and from the plain arrays are added where needed.
// Measured on the CNN-100k epoch: plain-layout gemm:jit 6.5 s, blocked jit:avx512_core see
// docs/performance.md.
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <array>

#include "kernels/kernels.hpp"

namespace tailor::kernels {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

// oneDNN's C++ execute() builds a std::unordered_map of its arguments on every call; the C entry
// point takes a plain array, so a step allocates nothing on our side.
template <size_t N>
void run(const dnnl::primitive& p, dnnl::stream& s, const std::array<dnnl_exec_arg_t, N>& args) {
  dnnl_primitive_execute(p.get(), s.get(), static_cast<int>(N), args.data());
}

// A user array in plain layout and, when the primitive wants another layout, a buffer of that
// layout with the reorder between them.
struct Operand {
  dnnl::memory user, inner;
  dnnl::reorder to_inner, to_user;
  bool reordered = false;

  void init(const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted, const dnnl::engine& eng,
            bool input, bool output) {
    user = dnnl::memory(plain, eng, DNNL_MEMORY_NONE);
    reordered = plain != wanted;
    if (!reordered) {
      inner = user;
      return;
    }
    inner = dnnl::memory(wanted, eng);  // allocated once, here
    if (input) to_inner = dnnl::reorder(user, inner);
    if (output) to_user = dnnl::reorder(inner, user);
  }
  void before(dnnl::stream& s, const void* p) {
    user.set_data_handle(const_cast<void*>(p));
    if (reordered && to_inner) run<2>(to_inner, s, {{{DNNL_ARG_FROM, user.get()}, {DNNL_ARG_TO, inner.get()}}});
  }
  void after(dnnl::stream& s) {
    if (reordered && to_user) run<2>(to_user, s, {{{DNNL_ARG_FROM, inner.get()}, {DNNL_ARG_TO, user.get()}}});
  }
};

}  // namespace

struct Conv2dKernel::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  // Forward, backward-data and backward-weights operands (user handles set per call).
  Operand f_src, f_w, f_b, f_dst, d_dst, d_w, d_src, w_src, w_ddst, w_dw, w_db;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  std::string impl;
};

Conv2dKernel::Conv2dKernel(const Conv2dShape& s) : shape_(s), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const dnnl::memory::dims src_dims{s.n, s.cin, s.h, s.w};
  const dnnl::memory::dims w_dims{s.cout, s.cin, s.k, s.k};
  const dnnl::memory::dims b_dims{s.cout};
  const dnnl::memory::dims dst_dims{s.n, s.cout, s.ho(), s.wo()};
  const dnnl::memory::dims strides{1, 1}, pad{s.pad, s.pad};
  dnnl::memory::desc src_md(src_dims, dt::f32, tag::nchw);
  dnnl::memory::desc w_md(w_dims, dt::f32, tag::oihw);
  dnnl::memory::desc b_md(b_dims, dt::f32, tag::x);
  dnnl::memory::desc dst_md(dst_dims, dt::f32, tag::nchw);
  dnnl::memory::desc src_any(src_dims, dt::f32, tag::any), w_any(w_dims, dt::f32, tag::any);
  dnnl::memory::desc dst_any(dst_dims, dt::f32, tag::any);

  dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training,
                                     dnnl::algorithm::convolution_direct, src_any, w_any, b_md,
                                     dst_any, strides, pad, pad);
  dnnl::convolution_forward::primitive_desc fpd(fd, m.engine);
  dnnl::convolution_backward_data::desc bdd(dnnl::algorithm::convolution_direct, src_any, w_any,
                                            dst_any, strides, pad, pad);
  dnnl::convolution_backward_data::primitive_desc bdpd(bdd, m.engine, fpd);
  dnnl::convolution_backward_weights::desc bwd(dnnl::algorithm::convolution_direct, src_any, w_any,
                                               b_md, dst_any, strides, pad, pad);
  dnnl::convolution_backward_weights::primitive_desc bwpd(bwd, m.engine, fpd);
  m.fwd = dnnl::convolution_forward(fpd);
  m.bwd_data = dnnl::convolution_backward_data(bdpd);
  m.bwd_weights = dnnl::convolution_backward_weights(bwpd);
  m.impl = fpd.impl_info_str();

  const auto& e = m.engine;
  m.f_src.init(src_md, fpd.src_desc(), e, true, false);
  m.f_w.init(w_md, fpd.weights_desc(), e, true, false);
  m.f_b.init(b_md, fpd.bias_desc(), e, true, false);
  m.f_dst.init(dst_md, fpd.dst_desc(), e, false, true);
  m.d_dst.init(dst_md, bdpd.diff_dst_desc(), e, true, false);
  m.d_w.init(w_md, bdpd.weights_desc(), e, true, false);
  m.d_src.init(src_md, bdpd.diff_src_desc(), e, false, true);
  m.w_src.init(src_md, bwpd.src_desc(), e, true, false);
  m.w_ddst.init(dst_md, bwpd.diff_dst_desc(), e, true, false);
  m.w_dw.init(w_md, bwpd.diff_weights_desc(), e, false, true);
  m.w_db.init(b_md, bwpd.diff_bias_desc(), e, false, true);
}

Conv2dKernel::~Conv2dKernel() = default;

std::string Conv2dKernel::impl_name() const { return impl_->impl; }

void Conv2dKernel::forward(const float* x, const float* weight, const float* bias, float* y) {
  Impl& m = *impl_;
  m.f_src.before(m.stream, x);
  m.f_w.before(m.stream, weight);
  m.f_b.before(m.stream, bias);
  m.f_dst.before(m.stream, y);
  run<4>(m.fwd, m.stream, {{{DNNL_ARG_SRC, m.f_src.inner.get()},
                            {DNNL_ARG_WEIGHTS, m.f_w.inner.get()},
                            {DNNL_ARG_BIAS, m.f_b.inner.get()},
                            {DNNL_ARG_DST, m.f_dst.inner.get()}}});
  m.f_dst.after(m.stream);
  m.stream.wait();
}

void Conv2dKernel::backward_data(const float* dy, const float* weight, float* dx) {
  Impl& m = *impl_;
  m.d_dst.before(m.stream, dy);
  m.d_w.before(m.stream, weight);
  m.d_src.before(m.stream, dx);
  run<3>(m.bwd_data, m.stream, {{{DNNL_ARG_DIFF_DST, m.d_dst.inner.get()},
                                 {DNNL_ARG_WEIGHTS, m.d_w.inner.get()},
                                 {DNNL_ARG_DIFF_SRC, m.d_src.inner.get()}}});
  m.d_src.after(m.stream);
  m.stream.wait();
}

void Conv2dKernel::backward_weights(const float* x, const float* dy, float* dweight, float* dbias) {
  Impl& m = *impl_;
  m.w_src.before(m.stream, x);
  m.w_ddst.before(m.stream, dy);
  m.w_dw.before(m.stream, dweight);
  m.w_db.before(m.stream, dbias);
  run<4>(m.bwd_weights, m.stream, {{{DNNL_ARG_SRC, m.w_src.inner.get()},
                                    {DNNL_ARG_DIFF_DST, m.w_ddst.inner.get()},
                                    {DNNL_ARG_DIFF_WEIGHTS, m.w_dw.inner.get()},
                                    {DNNL_ARG_DIFF_BIAS, m.w_db.inner.get()}}});
  m.w_dw.after(m.stream);
  m.w_db.after(m.stream);
  m.stream.wait();
}

}  // namespace tailor::kernels
