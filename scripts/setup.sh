#!/usr/bin/env bash
# Installs what tailor needs from Debian 12's packages; quick and silent when all are present.
#   scripts/setup.sh           build, run and test dependencies
#   scripts/setup.sh --torch   also PyTorch with OpenBLAS (reference files and `make bench`)
#   scripts/setup.sh --fuzz    also clang with libFuzzer, the sanitizers and OpenMP (`make fuzz`)
#
# Every package is named here, libraries the build finds indirectly included: packages are installed
# without their Recommends, so nothing may rely on one (libdnnl-dev's CMake config needs OpenCL, which
# libdnnl-dev only recommends). `make clean-room` proves this list on a bare Debian root.
set -euo pipefail

packages=(
  # toolchain
  cmake g++ make pkg-config
  # oneDNN, and the OpenCL headers and loader its dnnl-config.cmake looks for
  libdnnl-dev ocl-icd-opencl-dev opencl-c-headers ocl-icd-libopencl1
  # Google Highway: tailor's own kernels for the baseline, AVX2 and AVX-512, chosen at run time
  libhwy-dev
  # libraries linked into tailor
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libfmt-dev zlib1g-dev libpng-dev libjpeg-dev
  libcpp-httplib-dev libssl-dev libbrotli-dev libplplot-dev plplot-driver-cairo fonts-dejavu-core
  # ONNX export (the generated protobuf classes), and the two independent checkers of its files
  libonnx-dev libprotobuf-dev python3 python3-onnx python3-opencv python3-numpy
  # scale-out: Open MPI (mpirun, and the library tailor links)
  openmpi-bin libopenmpi-dev
  # the library's Python module (pybind11 over libtailor.so) for Debian's python3, its
  # scikit-learn estimator, DataFrames, and the quickstart notebook run headless in the tests
  pybind11-dev python3-dev python3-sklearn python3-pandas python3-matplotlib python3-pytest
  jupyter-nbconvert python3-ipykernel python3-jupyter-client
  # tests and benchmarks; qemu-user runs the binary as an AVX2-only CPU would (tests/test_qemu.cpp)
  libgtest-dev libbenchmark-dev qemu-user
  # `make deb`: CPack's DEB generator runs dpkg-shlibdeps (dpkg-dev) and `file`
  dpkg-dev file
  # the default data set
  dataset-fashion-mnist
  # the web front end (npm packages of web/) and the browser tests
  nodejs chromium ca-certificates
)
# Debian's npm is a separate package; a Node.js from elsewhere (NodeSource) ships its own npm and
# conflicts with Debian's, so npm is added only when no npm is there.
command -v npm > /dev/null || packages+=(npm)
case "${1:-}" in
  ""|--torch|--fuzz) ;;
  *) echo "setup: unknown option '$1' (use --torch, --fuzz or nothing)" >&2; exit 2 ;;
esac
if [[ "${1:-}" == "--torch" ]]; then
  # Without libopenblas0-pthread (only a Recommends of python3-torch's BLAS dependency) PyTorch runs
  # Debian's reference BLAS, 4-5x slower: the speed comparison would be against a crippled peer.
  packages+=(python3 python3-torch python3-numpy libopenblas0-pthread)
fi
if [[ "${1:-}" == "--fuzz" ]]; then
  # Debian 12's clang is clang 14: libFuzzer and the sanitizer runtimes are in libclang-rt-14-dev,
  # its OpenMP in libomp-14-dev (clang does not use GCC's libgomp).
  packages+=(clang-14 libclang-rt-14-dev libomp-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo > /dev/null || { echo "setup: not root and no sudo: install as root: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  # env: sudo's env_reset would drop DEBIAN_FRONTEND, and a debconf question would wait unseen.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi

# Front-end assets for report.html and the browser tests, from the npm registry (web/package-lock.json,
# every version runnable on Debian 12's Node 18; web/.npmrc makes npm refuse one that is not).
cd "$(dirname "$0")/../web"
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing web/ npm packages"
  npm ci --no-audit --no-fund --loglevel=error > /dev/null
fi
