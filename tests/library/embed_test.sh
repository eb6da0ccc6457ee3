#!/usr/bin/env bash
# The installed C++ package: `cmake --install` into a scratch prefix; nothing installed names the
# build tree; examples/embed configured with find_package(tailor) and built against it; its
# predictions of five Fashion-MNIST test pictures are those of the installed `tailor predict`,
# and of the installed Python module.
#   embed_test.sh BUILD_DIR EXAMPLE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
example=$(cd "$2" && pwd)
data=/usr/share/datasets/fashion-mnist
[[ -d $data ]] || { echo "SKIP: Debian's dataset-fashion-mnist is not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in bin/tailor lib/libtailor.so lib/tailor/libtailor_mpi.so include/tailor/tailor.hpp lib/cmake/tailor/tailorConfig.cmake; do
  [[ -e $prefix/$f ]] || { echo "FAIL: $f is not installed"; exit 1; }
done
if grep -rlF "$build" "$prefix"; then echo "FAIL: the files above name the build tree $build"; exit 1; fi

cmake -S "$example" -B "$work/example" -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
# Five test pictures as PGM files, written by the installed Python module.
pydir=$(ls -d "$prefix"/lib/python3.*/dist-packages)
PYTHONPATH=$pydir /usr/bin/python3 - "$work" <<'PY'
import sys, tailor
d = tailor.datasets.fashion_mnist()
for i in range(5):
    with open(f"{sys.argv[1]}/p{i}.pgm", "wb") as f:
        f.write(b"P5 28 28 255\n" + d.x_test[i].tobytes())
PY
pictures=("$work"/p{0,1,2,3,4}.pgm)
"$work/example/embed" "$data" "$work/run" "${pictures[@]}" | tee "$work/embed.txt"
grep -q "^test accuracy" "$work/embed.txt"

# The pictures in memory: the example's classes and probabilities are the Python module's.
PYTHONPATH=$pydir /usr/bin/python3 - "$work" <<'PY'
import sys, tailor
d = tailor.datasets.fashion_mnist()
run = tailor.load(sys.argv[1] + "/run")
p = run.predict_proba(d.x_test[:5])
with open(sys.argv[1] + "/python.txt", "w") as f:
    for i, c in enumerate(p.argmax(axis=1)):
        # as the example prints it: the float probability widened to double, times 100, %.1f
        f.write(f"picture {i}: {run.classes[c]} {100.0 * float(p[i, c]):.1f}%\n")
PY
diff <(grep '^picture' "$work/embed.txt") "$work/python.txt" || { echo "FAIL: the example and the Python module disagree"; exit 1; }

# The picture files: the example's lines are those of the installed `tailor predict`.
"$prefix/bin/tailor" predict "$work/run" "${pictures[@]}" --top 1 | tee "$work/cli.txt"
diff <(grep "^$work/p" "$work/embed.txt") "$work/cli.txt" || { echo "FAIL: the example and tailor predict disagree"; exit 1; }
echo "embed example: built with find_package(tailor); 5 pictures in memory as the Python module, 5 files as tailor predict"
