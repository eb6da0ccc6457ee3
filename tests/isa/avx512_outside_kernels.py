#!/usr/bin/env python3
"""Lists the functions of a binary that hold AVX-512 instructions outside the dispatched kernels.

Usage: avx512_outside_kernels.py BINARY...   (exit 0: none; 1: some, listed; 2: objdump failed)

An x86-64 instruction is AVX-512 when it is EVEX-encoded: after any legacy prefixes its first
byte is 0x62 (in 64-bit mode that byte is nothing else). Such instructions may appear only in the
AVX-512 bodies that Google Highway compiles into the namespaces N_AVX3 and N_AVX3_DL, which run
only where the CPU has AVX-512 (src/kernels/isa.hpp). Anything else would stop the binary with
SIGILL on an AVX2 CPU. The demangled names come from `objdump -d -C`.
"""
import re
import subprocess
import sys

PREFIXES = {"66", "67", "f2", "f3", "2e", "3e", "26", "64", "65", "36", "f0"}
FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")
# An instruction's first line: address, bytes, a tab, the mnemonic (a long one's further bytes
# follow on lines of their own, with no mnemonic).
INSTRUCTION = re.compile(r"^\s*[0-9a-f]+:\t((?:[0-9a-f]{2} )+)\s*\t(\S.*)$")
DISPATCHED = ("N_AVX3::", "N_AVX3_DL::")


def evex(raw):
    for byte in raw.split():
        if byte in PREFIXES:
            continue
        return byte == "62"
    return False


def scan(path):
    out = subprocess.run(["objdump", "-d", "-C", path], capture_output=True, text=True, check=True).stdout
    counts, evex_in_kernels, function = {}, 0, "?"
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            function = m.group(1)
            continue
        m = INSTRUCTION.match(line)
        if not m or not evex(m.group(1)):
            continue
        if any(d in function for d in DISPATCHED):
            evex_in_kernels += 1
        else:
            counts[function] = counts.get(function, 0) + 1
    return counts, evex_in_kernels


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    bad = 0
    for path in sys.argv[1:]:
        try:
            counts, inside = scan(path)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"{path}: objdump failed: {e}", file=sys.stderr)
            return 2
        for function, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"{path}: {n} AVX-512 instruction(s) in {function}")
        print(f"{path}: {inside} AVX-512 instructions, all in the dispatched AVX-512 kernels"
              if not counts else f"{path}: {sum(counts.values())} AVX-512 instructions outside the dispatched kernels")
        bad += len(counts)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
