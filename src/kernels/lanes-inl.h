// Per-instruction-set helpers for the kernels that run over C contiguous channels a vector at a
// time (batch norm over rows, the channels-last pools and block tail). Included by those files
// inside Highway's per-target compilation (kernels/isa.hpp): this header is compiled once per
// path, so it toggles its guard with HWY_TARGET_TOGGLE as Highway's own -inl.h headers do.
#if defined(TAILOR_KERNELS_LANES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TAILOR_KERNELS_LANES_INL_H_
#undef TAILOR_KERNELS_LANES_INL_H_
#else
#define TAILOR_KERNELS_LANES_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>
#include <cstring>

HWY_BEFORE_NAMESPACE();
namespace tailor::kernels::HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using MF = hn::Mask<DF>;
using DI = hn::RebindToSigned<DF>;
using VI = hn::Vec<DI>;

inline size_t lanes() { return hn::Lanes(DF()); }

// One group of channels k .. k + count - 1: a whole vector, or the last part of a row of C
// channels. Loads and stores of a part touch only its channels (a masked access where the
// instruction set has one; through a small buffer on the baseline, whose emulated masked load
// would read the whole vector past the end of an array).
struct Group {
  size_t count;
  bool full;
  MF mask;
};

inline Group group(int64_t left) {
  const DF d;
  const size_t n = hn::Lanes(d);
  const size_t count = left >= static_cast<int64_t>(n) ? n : static_cast<size_t>(left);
  return {count, count == n, hn::FirstN(d, count)};
}

inline VF load(const Group& g, const float* p) {
  const DF d;
  if (g.full) return hn::LoadU(d, p);
#if HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
  HWY_ALIGN float buf[hn::MaxLanes(d)] = {};
  std::memcpy(buf, p, g.count * sizeof(float));
  return hn::Load(d, buf);
#else
  return hn::MaskedLoad(g.mask, d, p);
#endif
}

inline void store(const Group& g, VF v, float* p) {
  const DF d;
  if (g.full) return hn::StoreU(v, d, p);
#if HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
  HWY_ALIGN float buf[hn::MaxLanes(d)];
  hn::Store(v, d, buf);
  std::memcpy(p, buf, g.count * sizeof(float));
#else
  hn::BlendedStore(v, g.mask, d, p);
#endif
}

// One byte per channel (the max pool's winners, 0..3), widened to a lane each: a whole group
// straight from memory, the last part of a row through a small buffer (a call to memcpy per
// group made the fused tail a third slower than the AVX-512 intrinsics it replaced).
inline VI load_bytes(const Group& g, const uint8_t* p) {
  const DI d;
  const hn::Rebind<uint8_t, DI> d8;
  if (g.full) return hn::BitCast(d, hn::PromoteTo(hn::RebindToUnsigned<DI>(), hn::LoadU(d8, p)));
  HWY_ALIGN uint8_t buf[hn::MaxLanes(d8)] = {};
  for (size_t i = 0; i < g.count; ++i) buf[i] = p[i];
  return hn::BitCast(d, hn::PromoteTo(hn::RebindToUnsigned<DI>(), hn::Load(d8, buf)));
}

inline void store_bytes(const Group& g, VI v, uint8_t* p) {
  const hn::Rebind<uint8_t, DI> d8;
  if (g.full) return hn::StoreU(hn::DemoteTo(d8, v), d8, p);
  HWY_ALIGN uint8_t buf[hn::MaxLanes(d8)];
  hn::Store(hn::DemoteTo(d8, v), d8, buf);
  for (size_t i = 0; i < g.count; ++i) p[i] = buf[i];
}

// relu as std::max(v, 0.0f) computes it: 0 where v < 0, else v (-0 and NaN pass as they are).
inline VF relu(VF v) { return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(DF())), v); }

// dy where y > 0, else 0: a relu's gradient from its output.
inline VF pass_where_positive(VF dy, VF y) { return hn::IfThenElseZero(hn::Gt(y, hn::Zero(DF())), dy); }

}  // namespace tailor::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // TAILOR_KERNELS_LANES_INL_H_ toggle
