// One binary for every x86-64 CPU, proven on an emulated older one: the tailor built here (for the
// x86-64 baseline, its kernels dispatched at run time) runs under Debian's qemu-user emulating a
// Haswell, an AVX2 CPU whose emulation stops at the first AVX-512 instruction (SIGILL). A small
// FCN and CNN train one epoch on a slice of Fashion-MNIST there and give exactly what the native
// run gives on the avx2 path (TAILOR_ISA=avx2, oneDNN capped at AVX2): the same checkpoint bytes,
// so the same test accuracy. Beside it: the binary itself holds no AVX-512 instruction outside
// the dispatched kernels (tests/isa/avx512_outside_kernels.py).
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "cli_runner.hpp"
#include "kernels/isa.hpp"
#include "tiny_data.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::slurp;

// "test accuracy: 54.00% (loss 1.5364)" from a run's last line.
std::string accuracy_line(const std::string& out) {
  const auto at = out.find("test accuracy:");
  return at == std::string::npos ? std::string() : out.substr(at, out.find(')', at) + 1 - at);
}

TEST(Qemu, AHaswellRunsTheAvx2PathBitForBit) {
  if (std::system("command -v qemu-x86_64 > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "qemu-x86_64 is not installed (Debian's qemu-user; scripts/setup.sh installs it)";
  if (!kernels::cpu_runs(kernels::Isa::avx2)) GTEST_SKIP() << "this CPU cannot run the avx2 path natively";
  const std::string dir = (fs::temp_directory_path() / ("tailor_qemu_" + std::to_string(::getpid()))).string();
  if (!testing::write_fashion_slice(dir + "/data", 640, 200)) GTEST_SKIP() << "no Fashion-MNIST";
  // GOMP_SPINCOUNT set: tailor would otherwise restart itself through /proc/self/exe
  // (main.cpp), an exec that qemu-user hands to the host, where the binary runs natively.
  const std::string env = "GOMP_SPINCOUNT=3000 OMP_NUM_THREADS=2 ";
  for (const std::string model : {"--model fcn --hidden 64,32", "--model cnn --channels 6,12 --hidden 32"}) {
    SCOPED_TRACE(model);
    const std::string args = " train --data " + dir + "/data " + model +
                             " --epochs 1 --val 0 --batch-size 32 --threads 2 --progress lines --out ";
    const auto native = run_command(env + "TAILOR_ISA=avx2 " + std::string(TAILOR_BINARY) + args + dir + "/native", dir);
    ASSERT_EQ(native.code, 0) << native.err;
    EXPECT_NE(native.out.find("(kernels avx2, oneDNN avx2)"), std::string::npos) << native.out;
    const auto emulated = run_command(env + "qemu-x86_64 -cpu Haswell " + std::string(TAILOR_BINARY) + args + dir + "/emulated", dir);
    ASSERT_EQ(emulated.code, 0) << "under qemu-x86_64 -cpu Haswell: " << emulated.err.substr(0, 2000);
    // Nothing forced: the emulated CPU itself gets the avx2 path.
    EXPECT_NE(emulated.out.find("(kernels avx2, oneDNN avx2)"), std::string::npos) << emulated.out;
    const std::string line = accuracy_line(native.out);
    ASSERT_FALSE(line.empty()) << native.out;
    EXPECT_EQ(accuracy_line(emulated.out), line);
    EXPECT_EQ(slurp(dir + "/emulated/model.ckpt"), slurp(dir + "/native/model.ckpt")) << "the weights differ";
    RecordProperty(model.substr(8, 3), line);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tailor
