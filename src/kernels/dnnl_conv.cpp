// Convolution through oneDNN. Activations and weights are plain arrays at the seam (nchw or nhwc,
// oihw) so the layers and the optimizer's flat arena see ordinary arrays.
// nchw: each primitive gets the layout it is fastest in (format_tag::any, usually nChw16c for the
// AVX-512 jit kernels) and reorders to and from the plain arrays are added where needed.
// nhwc (channels_last): the primitives work on the arrays directly. A reorder of a CNN-100k's
// activations cost as much as a third of its convolutions' time; oneDNN's nhwc kernels are as fast
// as its blocked ones except when a single input channel is convolved, where the blocked output
// (nChw16c with 16 channels) has the same bytes as nhwc and is taken as it is.
// Measured on the CNN-100k epoch: see docs/performance.md.
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <string>

#include "kernels/dnnl_exec.hpp"
#include "kernels/kernels.hpp"

namespace tailor::kernels {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

// Byte offset of element idx in a plain or blocked layout (single-level blocks), or -1 if the
// layout is of another kind.
int64_t offset_of(const dnnl_memory_desc_t& d, const int64_t* idx) {
  if (d.format_kind != dnnl_blocked) return -1;
  const auto& b = d.format_desc.blocking;
  int64_t block[DNNL_MAX_NDIMS];
  for (int i = 0; i < d.ndims; ++i) block[i] = 1;
  for (int k = 0; k < b.inner_nblks; ++k) {
    if (block[b.inner_idxs[k]] != 1) return -1;  // two-level blocking: not handled
    block[b.inner_idxs[k]] = b.inner_blks[k];
  }
  int64_t off = d.offset0, inner_stride = 1;
  for (int k = b.inner_nblks - 1; k >= 0; --k) {
    off += (idx[b.inner_idxs[k]] % b.inner_blks[k]) * inner_stride;
    inner_stride *= b.inner_blks[k];
  }
  for (int i = 0; i < d.ndims; ++i) off += (idx[i] / block[i]) * b.strides[i];
  return off;
}

// Whether two layouts of the same dims put every element at the same place (nChw16c with 16
// channels is nhwc, for example). Plain and single-level blocked offsets are sums of one term per
// dimension, so comparing each dimension's terms with the others at 0 decides it.
bool same_bytes(const dnnl::memory::desc& a, const dnnl::memory::desc& b) {
  if (a == b) return true;
  const dnnl_memory_desc_t &x = a.data, &y = b.data;
  if (x.ndims != y.ndims || x.data_type != y.data_type || a.get_size() != b.get_size()) return false;
  for (int i = 0; i < x.ndims; ++i)
    if (x.dims[i] != y.dims[i]) return false;
  int64_t idx[DNNL_MAX_NDIMS] = {};
  if (offset_of(x, idx) != offset_of(y, idx) || offset_of(x, idx) < 0) return false;
  for (int i = 0; i < x.ndims; ++i) {
    for (int64_t v = 1; v < x.dims[i]; ++v) {
      idx[i] = v;
      if (offset_of(x, idx) != offset_of(y, idx)) return false;
    }
    idx[i] = 0;
  }
  return true;
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
    reordered = !same_bytes(plain, wanted);
    if (!reordered) {
      inner = plain == wanted ? user : dnnl::memory(wanted, eng, DNNL_MEMORY_NONE);  // same bytes, other desc
      return;
    }
    inner = dnnl::memory(wanted, eng);  // allocated once, here
    if (input) to_inner = dnnl::reorder(user, inner);
    if (output) to_user = dnnl::reorder(inner, user);
  }
  void before(dnnl::stream& s, const void* p) {
    user.set_data_handle(const_cast<void*>(p));
    if (!reordered && inner != user) inner.set_data_handle(const_cast<void*>(p));
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
  // Backward-weights reads the forward's converted x, backward-data the converted dy of
  // backward-weights, when the layouts agree (one conversion each instead of two).
  bool share_src = false, share_ddst = false;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  std::string impl;
};

Conv2dKernel::Conv2dKernel(const Conv2dShape& s) : shape_(s), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const dnnl::memory::dims src_dims{s.n, s.cin, s.h, s.w};
  // Grouped (depthwise: groups == cin == cout): oneDNN's (G, Cout/G, Cin/G, K, K), whose goihw
  // order is PyTorch's (Cout, Cin/G, K, K) bytes.
  const bool grouped = s.groups > 1;
  const dnnl::memory::dims w_dims = grouped ? dnnl::memory::dims{s.groups, s.cout / s.groups, s.cin / s.groups, s.k, s.k}
                                            : dnnl::memory::dims{s.cout, s.cin, s.k, s.k};
  const dnnl::memory::dims b_dims{s.cout};
  const dnnl::memory::dims dst_dims{s.n, s.cout, s.ho(), s.wo()};
  const dnnl::memory::dims strides{s.stride, s.stride}, pad{s.pad, s.pad};
  const tag plain = s.channels_last ? tag::nhwc : tag::nchw;
  const tag src_plain = s.channels_last && !s.planar_input ? tag::nhwc : tag::nchw;
  dnnl::memory::desc src_md(src_dims, dt::f32, src_plain);
  dnnl::memory::desc w_md(w_dims, dt::f32, grouped ? tag::goihw : tag::oihw);
  dnnl::memory::desc b_md(b_dims, dt::f32, tag::x);
  dnnl::memory::desc dst_md(dst_dims, dt::f32, plain);
  dnnl::memory::desc w_any(w_dims, dt::f32, tag::any);  // the products' weights

  // Each primitive for activations in layout `act` (any: oneDNN's choice). In bf16 the inputs
  // of each product (x, weight, dy) are bf16 and its output float.
  // A convolution of fewer than 8 input channels (the first, on the image) ran slower in bf16
  // than in float (its products are short; the conversions dominate): it stays float.
  const bool bf16 = s.bf16 && s.cin >= 8;
  const dt in_t = bf16 ? dt::bf16 : dt::f32;
  auto md = [&](const dnnl::memory::dims& dims, tag act, dt t = dt::f32) { return dnnl::memory::desc(dims, t, act); };
  if (bf16) w_any = dnnl::memory::desc(w_dims, dt::bf16, tag::any);
  auto make_fwd = [&](tag src_act, tag dst_act) {
    return dnnl::convolution_forward::primitive_desc(
        {dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, md(src_dims, src_act, in_t), w_any,
         b_md, md(dst_dims, dst_act), strides, pad, pad},
        m.engine);
  };
  // The plain layouts themselves where oneDNN has a fast kernel for them: else its own choice,
  // with reorders at the seam. (A planar input with an nhwc output of 8 channels gets only the
  // reference kernel, "ref:any": a 20x20 colour CNN took 180 s an epoch on it, 3 s without.)
  auto plain_or = [](auto chosen, auto make) {
    try {
      auto pd = make();
      const bool ref = std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
      if (!ref || std::string(chosen.impl_info_str()).rfind("ref", 0) == 0) return pd;
    } catch (const dnnl::error&) {
    }
    return chosen;
  };
  // Channels last: oneDNN's own choice where it has the bytes of nhwc anyway (a blocked layout
  // whose block is all the channels), else nhwc itself.
  auto fpd = make_fwd(tag::any, tag::any);
  if (s.channels_last && !(same_bytes(src_md, fpd.src_desc()) && same_bytes(dst_md, fpd.dst_desc())))
    fpd = plain_or(fpd, [&] { return make_fwd(src_plain, plain); });
  auto make_data = [&](tag src_act, tag dst_act) {
    return dnnl::convolution_backward_data::primitive_desc(
        {dnnl::algorithm::convolution_direct, md(src_dims, src_act), w_any, md(dst_dims, dst_act, in_t), strides, pad,
         pad},
        m.engine, fpd);
  };
  auto bdpd = make_data(tag::any, tag::any);
  if (s.channels_last && !(same_bytes(src_md, bdpd.diff_src_desc()) && same_bytes(dst_md, bdpd.diff_dst_desc())))
    bdpd = plain_or(bdpd, [&] { return make_data(src_plain, plain); });
  const dnnl::memory::desc dw_any(w_dims, dt::f32, tag::any);  // weight gradients stay float
  auto make_weights = [&](tag src_act, tag dst_act) {
    return dnnl::convolution_backward_weights::primitive_desc(
        {dnnl::algorithm::convolution_direct, md(src_dims, src_act, in_t), dw_any, b_md, md(dst_dims, dst_act, in_t),
         strides, pad, pad},
        m.engine, fpd);
  };
  auto bwpd = make_weights(tag::any, tag::any);
  if (s.channels_last && !(same_bytes(src_md, bwpd.src_desc()) && same_bytes(dst_md, bwpd.diff_dst_desc())))
    bwpd = plain_or(bwpd, [&] { return make_weights(src_plain, plain); });
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
  m.share_src = m.f_src.reordered && m.w_src.reordered && fpd.src_desc() == bwpd.src_desc();
  m.share_ddst = m.w_ddst.reordered && m.d_dst.reordered && bwpd.diff_dst_desc() == bdpd.diff_dst_desc();
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
  if (!m.share_ddst) m.d_dst.before(m.stream, dy);
  m.d_w.before(m.stream, weight);
  m.d_src.before(m.stream, dx);
  run<3>(m.bwd_data, m.stream, {{{DNNL_ARG_DIFF_DST, (m.share_ddst ? m.w_ddst : m.d_dst).inner.get()},
                                 {DNNL_ARG_WEIGHTS, m.d_w.inner.get()},
                                 {DNNL_ARG_DIFF_SRC, m.d_src.inner.get()}}});
  m.d_src.after(m.stream);
  m.stream.wait();
}

void Conv2dKernel::backward_weights(const float* x, const float* dy, float* dweight, float* dbias) {
  Impl& m = *impl_;
  if (!m.share_src) m.w_src.before(m.stream, x);
  m.w_ddst.before(m.stream, dy);
  m.w_dw.before(m.stream, dweight);
  m.w_db.before(m.stream, dbias);
  run<4>(m.bwd_weights, m.stream, {{{DNNL_ARG_SRC, (m.share_src ? m.f_src : m.w_src).inner.get()},
                                    {DNNL_ARG_DIFF_DST, m.w_ddst.inner.get()},
                                    {DNNL_ARG_DIFF_WEIGHTS, m.w_dw.inner.get()},
                                    {DNNL_ARG_DIFF_BIAS, m.w_db.inner.get()}}});
  m.w_dw.after(m.stream);
  m.w_db.after(m.stream);
  m.stream.wait();
}

}  // namespace tailor::kernels
