# The two commands of the set-up contract: `make run` and `make test`.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all build setup run test bench clean reference clean-room fuzz install deb

all: build

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Trains the default model (a CNN of about 100k weights) and prints its test accuracy.
run: build
	$(BUILD)/tailor train --out runs/default

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The program, the library (libtailor.so, include/tailor/, its CMake package), the Python module and
# the MPI plugin under PREFIX (default /usr/local).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian package, $(BUILD)/tailor_<version>_amd64.deb (CPack; dependencies from dpkg-shlibdeps).
deb: build
	@cd $(BUILD) && cpack -G DEB > cpack.log 2>&1 || { tail -20 cpack.log; exit 1; }
	@ls $(BUILD)/tailor_*_amd64.deb

# Side-by-side speed comparison with PyTorch (installs python3-torch if missing).
bench: build
	@scripts/setup.sh --torch
	bench/compare_pytorch.sh

# Regenerates the committed PyTorch reference files in tests/data/torch_ref.
reference:
	@scripts/setup.sh --torch
	/usr/bin/python3 scripts/make_torch_reference.py tests/data/torch_ref

# The README's two commands in a bare Debian 12 root (debootstrap minbase), as root; see README.
clean-room:
	@scripts/clean_room.sh

# libFuzzer harnesses with ASan and UBSan (clang, in build-fuzz/): FUZZ_SECONDS each (default 60).
fuzz:
	@scripts/fuzz.sh

clean:
	rm -rf $(BUILD) build-fuzz
