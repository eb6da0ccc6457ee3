// The start-up choice of kernels/isa.hpp: Highway's targets and oneDNN's ceiling set to one path.
// The choice lives where the two libraries keep theirs (Highway's table of chosen targets,
// oneDNN's maximum ISA): tailor holds no state of its own for it.
#include "kernels/isa.hpp"

#include <hwy/targets.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/kernels.hpp"
#include "util/error.hpp"

namespace tailor::kernels {

namespace {

// Highway's targets of each path (CMakeLists.txt compiles these three and no others).
constexpr int64_t kAvx512Targets = HWY_AVX3 | HWY_AVX3_DL;
constexpr int64_t kAvx2Targets = HWY_AVX2;

dnnl::cpu_isa onednn_ceiling(Isa isa) {
  switch (isa) {
    case Isa::baseline: return dnnl::cpu_isa::sse41;  // oneDNN's lowest jit level
    case Isa::avx2: return dnnl::cpu_isa::avx2;
    case Isa::avx512: break;
  }
  return dnnl::cpu_isa::all;
}

std::string runnable_paths() {
  std::string s;
  for (Isa i : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (cpu_runs(i)) s += std::string(s.empty() ? "" : ", ") + isa_name(i);
  return s;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::baseline: break;
  }
  return "baseline";
}

Isa parse_isa(const std::string& name) {
  for (Isa i : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (name == isa_name(i)) return i;
  throw Error("TAILOR_ISA='" + name + "' is not a path (expected baseline, avx2 or avx512)");
}

bool cpu_runs(Isa isa) {
  // Highway's own detection, which also dispatches the kernels (AVX3 needs AVX-512 F, BW, DQ and
  // VL; AVX2 also FMA, BMI2 and F16C), read once: choose_isa reads it before it disables targets.
  static const int64_t cpu = hwy::SupportedTargets();
  switch (isa) {
    case Isa::avx512: return (cpu & HWY_AVX3) != 0;
    case Isa::avx2: return (cpu & (HWY_AVX2 | HWY_AVX3)) != 0;
    case Isa::baseline: break;
  }
  return true;
}

Isa best_isa() { return cpu_runs(Isa::avx512) ? Isa::avx512 : cpu_runs(Isa::avx2) ? Isa::avx2 : Isa::baseline; }

void choose_isa(const char* forced) {
  const Isa isa = forced && *forced ? parse_isa(forced) : best_isa();
  if (!cpu_runs(isa))
    throw Error(std::string("TAILOR_ISA=") + forced + ": this CPU cannot run the " + isa_name(isa) +
                " path (it runs " + runnable_paths() + ")");
  int64_t off = 0;
  if (isa != Isa::avx512) off |= kAvx512Targets;
  if (isa == Isa::baseline) off |= kAvx2Targets;
  hwy::DisableTargets(off);
  // oneDNN takes its ceiling only before it first looks at the CPU (a primitive, or the ISA
  // query). Later, the ceiling it already has is fine if it lies within this one (oneDNN's ISA
  // values are nested bit masks).
  const dnnl::cpu_isa ceiling = onednn_ceiling(isa);
  if (dnnl::set_max_cpu_isa(ceiling) != dnnl::status::success) {
    const auto now = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    if ((now & static_cast<unsigned>(ceiling)) != now)
      throw Error(std::string("TAILOR_ISA=") + isa_name(isa) + " came too late: oneDNN had chosen its " + cpu_isa() +
                  " kernels already");
  }
}

Isa current_isa() {
  const int64_t on = hwy::SupportedTargets();
  if (on & HWY_AVX3) return Isa::avx512;
  if (on & HWY_AVX2) return Isa::avx2;
  return Isa::baseline;
}

std::string isa_summary() { return std::string("kernels ") + isa_name(current_isa()) + ", oneDNN " + cpu_isa(); }

}  // namespace tailor::kernels
