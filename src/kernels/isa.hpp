#pragma once
// Which instruction set the kernels run, chosen once when the process starts.
//
// tailor is built for the x86-64 baseline that every 64-bit x86 CPU runs. Its own kernels (batch
// norm, pools and the fused block tail, the optimizer loops, dropout masks, input normalisation,
// bf16 conversions) are compiled three times by Google Highway (Debian's libhwy-dev): for that
// baseline, for AVX2 with FMA, and for AVX-512 (F, BW, DQ, VL); oneDNN's convolutions and products
// pick their own kernels. At start-up both take the best this CPU has, or the path that the
// TAILOR_ISA environment variable forces (to compare paths, or to reproduce an older CPU's results
// on a newer one): baseline, avx2 or avx512. oneDNN's ceiling is set to match
// (ONEDNN_MAX_CPU_ISA: sse41, avx2, or no ceiling).
#include <string>

namespace tailor::kernels {

enum class Isa { baseline, avx2, avx512 };

const char* isa_name(Isa isa);
// "baseline", "avx2" or "avx512"; throws tailor::Error naming TAILOR_ISA otherwise.
Isa parse_isa(const std::string& name);
// Whether this CPU can run the path.
bool cpu_runs(Isa isa);
// The best path this CPU runs.
Isa best_isa();

// Chooses the path for this process: `forced` is TAILOR_ISA's value (null or empty: the best this
// CPU runs). Call it before any kernel runs (tailor's main does; so does the test harness);
// without a call, every kernel takes the best path. Throws tailor::Error, naming TAILOR_ISA, on an
// unknown name or a path this CPU cannot run, and when oneDNN has already chosen its kernels.
void choose_isa(const char* forced);

// The path tailor's own kernels take now.
Isa current_isa();
// For the headers of runs and speed figures: "kernels avx512, oneDNN avx512_core_amx".
std::string isa_summary();

}  // namespace tailor::kernels
