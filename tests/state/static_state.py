#!/usr/bin/env python3
"""No thread-local or global mutable state in tailor's own code, beyond a short list with reasons.

Lists every object with static storage that tailor's code defines in a writable section (nm types
b/B/d/D: .bss, .data, and .data.rel.ro for constants that need relocations) in the given archives
and shared objects, and fails on one that is not below; and fails on any `thread_local` in src/.
A new global, or a static inside a function, must be made a member of the object that owns it (a
run, a model, a server), or added here with the reason it cannot be.

    static_state.py SRC_DIR FILE...
"""
import re
import subprocess
import sys

# (pattern on the demangled name, why it may exist)
ALLOWED = [
    (r"^tailor::kernels::\w+HighwayDispatchTable$",
     "Google Highway's per-kernel dispatch table (HWY_EXPORT): filled once with the CPU's best target"),
    (r"^tailor::\(anonymous namespace\)::k(Blues|Heat|Diverging|Greys|Reserved|Markers|\w+Names)$",
     "constant tables (const std::vector, std::set, const char* const[]): written only by their initialisers"),
    (r"^tailor::kernels::has_bf16\(\)::yes$", "static const: whether the CPU runs bf16, found once"),
    (r"^tailor::kernels::cpu_runs\(tailor::kernels::Isa\)::cpu$", "static const: the CPU's instruction sets, found once"),
    (r"^tailor::study_table1_csv\[abi:cxx11\]\(\)::text$", "static const: the study's Table 1, built in"),
    (r"^tailor::\(anonymous namespace\)::spawn\(.*\)::env$", "static const: the sweep's child environment, made once"),
    (r"^tailor::\(anonymous namespace\)::plplot_lock\(\)::m$",
     "the lock around PLplot, whose current stream is the process's (report/png_stream.cpp)"),
    (r"^tailor::cli::\(anonymous namespace\)::g_(interrupt|stop_requested|soft_stop|hard_stop)$",
     "the program's Ctrl-C/SIGTERM flag: a signal handler can reach nothing but a global (never in the library)"),
    (r"^tailor::dist::\(anonymous namespace\)::g_(active|rank|size|local_size|mpi)$",
     "the process's MPI world: MPI is initialised once per process, before any thread, and read-only after"),
]


def main():
    src, files = sys.argv[1], sys.argv[2:]
    bad = []
    for path in files:
        out = subprocess.run(["nm", "-C", "--defined-only", path], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split(" ", 2)
            if len(parts) != 3 or parts[1] not in ("b", "B", "d", "D"):
                continue
            name = parts[2]
            if not name.startswith("tailor::") or re.match(r"^(guard variable|vtable|typeinfo)", name):
                continue
            if not any(re.match(p, name) for p, _ in ALLOWED):
                bad.append(f"{path}: {name}")
    grep = subprocess.run(["grep", "-rn", "--include=*.cpp", "--include=*.hpp", "--include=*.h", r"\bthread_local\b", src],
                          capture_output=True, text=True)
    bad += [f"thread_local: {line}" for line in grep.stdout.splitlines()]
    if bad:
        print("mutable static state in tailor's code (make it a member of its owner, or list it with a reason "
              "in tests/state/static_state.py):")
        print("\n".join(sorted(set(bad))))
        return 1
    print(f"no thread-local state; every static object of tailor's code in {len(files)} files is on the list "
          f"of {len(ALLOWED)} reasons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
