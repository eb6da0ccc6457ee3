// The allreduce data-parallel training does once per step, timed between the ranks of one
// mpirun: `mpirun -np 2 build/bench/allreduce_bench [floats]` (default 100000, the gradient of a
// 100k-weight model). Prints the median of 500 allreduces after 50 warm-up ones (docs/scale.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dist/mpi.hpp"

int main(int argc, char** argv) {
  if (!tailor::dist::init()) {
    std::fprintf(stderr, "allreduce_bench: start it with mpirun (e.g. mpirun -np 2 %s)\n", argv[0]);
    return 2;
  }
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  std::vector<float> grads(n, 1.0f / static_cast<float>(tailor::dist::rank() + 1));
  std::vector<double> us;
  for (int i = 0; i < 550; ++i) {
    tailor::dist::barrier();
    const auto t0 = std::chrono::steady_clock::now();
    tailor::dist::allreduce_sum(grads.data(), n);
    const double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (i >= 50) us.push_back(t);
  }
  std::sort(us.begin(), us.end());
  if (tailor::dist::rank() == 0)
    std::printf("%s: allreduce of %zu floats (%.0f KB): median %.1f us, p10 %.1f us, p90 %.1f us (%.2f GB/s of data)\n",
                tailor::dist::backend().c_str(), n, n * 4 / 1000.0, us[us.size() / 2], us[us.size() / 10],
                us[us.size() * 9 / 10], n * 4 / (us[us.size() / 2] * 1e3));
  tailor::dist::finalize();
  return 0;
}
