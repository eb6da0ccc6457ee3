#!/usr/bin/python3
"""Side-by-side speed of tailor and PyTorch 1.13 (Debian python3-torch) on this CPU, in one run.

Trains the FCN-100k and CNN-100k exactly as `tailor train --weights 100k` builds them (the layer
list comes from `tailor summary --json`), at batch 64 and 256 with Adam, each program at its best
of 1 and 2 threads, and prints seconds per epoch (median of EPOCHS), the ratio, evaluation
images per second over the 10,000 test images, tailor's achieved GFLOP/s and its share of the
measured sgemm peak, and each program's peak memory (RSS).

usage: bench/compare_pytorch.py [--epochs 3] [--tailor build/tailor]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def dpkg_version(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 and r.stdout else "not installed"


def print_header(tailor_row, torch_row):
    """What was compared, on what: the CPU, the ISA oneDNN uses, the BLAS PyTorch really ran, versions."""
    alias = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    target = os.path.realpath(alias) if os.path.exists(alias) else "missing"
    loaded = [p for p in torch_row["blas_loaded"] if "blas" in os.path.basename(p)]
    print(f"CPU: {tailor_row['cpu']}, {os.cpu_count()} cores; oneDNN {tailor_row['onednn_version']} "
          f"detects and uses {tailor_row['isa']}")
    print(f"tailor {tailor_row['tailor_version']}; PyTorch {torch_row['torch_version']} "
          f"(python3-torch {dpkg_version('python3-torch')})")
    print(f"PyTorch's BLAS: libblas.so.3 -> {target}; loaded by the PyTorch process: {', '.join(loaded) or 'none'}"
          f" (libopenblas0-pthread {dpkg_version('libopenblas0-pthread')})")
    if any("/blas/" in p for p in loaded) or "/blas/" in target:
        print("WARNING: PyTorch runs Debian's reference BLAS, 4-5x slower than OpenBLAS: "
              "install libopenblas0-pthread (scripts/setup.sh --torch) for a fair comparison")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--tailor", default=os.path.join(HERE, "..", "build", "tailor"))
    ap.add_argument("--precisions", default="fp32,bf16",
                    help="tailor's training precisions to measure (bf16 is skipped where the CPU lacks it)")
    a = ap.parse_args()
    batches, threads = [64, 256], [1, 2]

    tailor = {}  # (model, batch, precision) -> best row over thread counts
    for prec in a.precisions.split(","):
        for t in threads:
            cmd = [a.tailor, "bench", "--json", "--epochs", str(a.epochs), "--threads", str(t),
                   "--batch-sizes", ",".join(map(str, batches)), "--precision", prec]
            if prec != "fp32" and subprocess.run(cmd[:2] + ["--epochs", "1", "--batch-sizes", "4096", "--models", "fcn",
                                                            "--precision", prec], capture_output=True).returncode:
                print(f"(tailor --precision {prec} is not available on this CPU: skipped)")
                break
            for row in run_json(cmd):
                key = (row["model"], row["batch"], prec)
                if key not in tailor or row["epoch_seconds"] < tailor[key]["epoch_seconds"]:
                    tailor[key] = row
                best_eval = max(tailor[key].get("best_eval", 0), row["eval_images_per_second"])
                tailor[key]["best_eval"] = best_eval

    torch = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in ["fcn", "cnn"]:
            spec = os.path.join(tmp, model + ".json")
            with open(spec, "w") as f:
                f.write(subprocess.run([a.tailor, "summary", "--model", model, "--weights", "100k", "--json"],
                                       check=True, capture_output=True, text=True).stdout)
            for b in batches:
                for t in threads:
                    r = run_json(["/usr/bin/python3", os.path.join(HERE, "torch_train.py"), spec, "--epochs",
                                  str(a.epochs), "--batch-size", str(b), "--threads", str(t)])
                    key = (model, b)
                    if key not in torch or r["median_epoch_seconds"] < torch[key]["median_epoch_seconds"]:
                        best_eval = max(torch.get(key, {}).get("eval_images_per_second", 0), r["eval_images_per_second"])
                        torch[key] = r
                        torch[key]["eval_images_per_second"] = best_eval
                    else:
                        torch[key]["eval_images_per_second"] = max(torch[key]["eval_images_per_second"],
                                                                   r["eval_images_per_second"])

    first = next(iter(tailor.values()))
    peak = first["sgemm_peak_gflops_per_core"]
    print_header(first, next(iter(torch.values())))
    print(f"sgemm 1024^3 peak measured by tailor bench: {peak:.0f} GFLOP/s per core")
    head = ("model", "batch", "tailor", "tailor s/ep", "torch s/ep", "ratio", "tailor eval/s", "torch eval/s", "ratio",
            "GFLOP/s", "of peak", "tailor MiB", "torch MiB")
    print("%-9s %5s %6s %11s %10s %6s %13s %12s %6s %8s %7s %10s %9s" % head)
    for (model, b, prec), t in sorted(tailor.items(), key=lambda kv: (kv[0][0] != "fcn", kv[0][1], kv[0][2])):
        p = torch[(model, b)]
        print("%-9s %5d %6s %11.3f %10.3f %5.1fx %13.0f %12.0f %5.1fx %8.1f %6.1f%% %10.0f %9.0f" % (
            model + "-100k", b, prec, t["epoch_seconds"], p["median_epoch_seconds"],
            p["median_epoch_seconds"] / t["epoch_seconds"], t["best_eval"], p["eval_images_per_second"],
            t["best_eval"] / p["eval_images_per_second"], t["gflops"], 100 * t["peak_share"], t["peak_rss_mb"],
            p["peak_rss_mb"]))
    print(f"(median of {a.epochs} epochs of 55,000 images, Adam 1e-3; each program at its best of 1 and 2 threads; "
          "PyTorch in fp32; tailor in fp32 and in bf16 (products in bfloat16, float accumulation and master weights); "
          "share of peak = GFLOP/s / (per-core fp32 peak x threads used); tailor's RSS is its bench process's peak so far)")


if __name__ == "__main__":
    sys.exit(main())
