#!/usr/bin/python3
"""Trains a tailor model description in PyTorch and prints seconds per epoch as JSON.

The architecture comes from `tailor summary ... --json` (the same layer vocabulary tailor uses), so
both programs train exactly the same network: same layers, widths and weight count. Data is the
same Fashion-MNIST IDX files, held in memory as one normalised tensor and batched by slicing a
shuffled index (PyTorch's fastest plain path, no DataLoader workers).

usage: bench/torch_train.py MODEL_JSON --epochs 3 --batch-size 64 --threads 1 [--data DIR]
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def build(layers):
    mods = []
    for l in layers:
        t = l["type"]
        if t == "linear":
            mods.append(nn.Linear(l["in"], l["out"]))
        elif t == "conv2d":
            mods.append(nn.Conv2d(l["in"], l["out"], l["kernel"], padding=l["padding"]))
        elif t == "batchnorm1d":
            mods.append(nn.BatchNorm1d(l["features"]))
        elif t == "batchnorm2d":
            mods.append(nn.BatchNorm2d(l["channels"]))
        elif t == "maxpool2d":
            mods.append(nn.MaxPool2d(l["kernel"]))
        elif t == "avgpool2d":
            mods.append(nn.AvgPool2d(l["kernel"]))
        elif t == "lppool2d":
            mods.append(nn.LPPool2d(l["p"], l["kernel"]))
        elif t == "relu":
            mods.append(nn.ReLU())
        elif t == "sigmoid":
            mods.append(nn.Sigmoid())
        elif t == "tanh":
            mods.append(nn.Tanh())
        elif t == "flatten":
            mods.append(nn.Flatten())
        elif t == "dropout":
            mods.append(nn.Dropout(l["p"]))
        else:
            raise SystemExit(f"torch_train.py: unknown layer type {t}")
    return nn.Sequential(*mods)


def loaded_blas():
    """The BLAS libraries this process has mapped, after training: what PyTorch really ran on."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    names = ("blas", "mkl", "lapack")
    return sorted(os.path.realpath(p) for p in paths if any(n in os.path.basename(p) for n in names))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_json")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--val", type=int, default=5000)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    spec = json.load(open(a.model_json))
    model = build(spec["layers"])
    weights = sum(p.numel() for p in model.parameters())
    assert weights == spec["weights"], (weights, spec["weights"])
    x = read_idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64)
    x, y = x[a.val:], y[a.val:]  # the same number of training images as tailor's split
    x = (x - x.mean()) / x.std()
    shape = [-1] + spec["input"]
    if spec["model"]["family"] == "fcn":
        shape = [-1, spec["input"][0] * spec["input"][1] * spec["input"][2]]
    xt = torch.from_numpy(x).reshape(shape).contiguous()
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for _ in range(a.epochs):
        model.train()
        perm = torch.randperm(len(yt))
        t0 = time.perf_counter()
        for i in range(0, len(yt), a.batch_size):
            idx = perm[i:i + a.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    # Evaluation throughput over the 10,000 test images.
    xs = read_idx(f"{a.data}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    xs = torch.from_numpy((xs - x.mean()) / x.std()).reshape(shape).contiguous()
    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        for i in range(0, len(xs), 500):
            model(xs[i:i + 500])
        eval_s = time.perf_counter() - t0
    json.dump({"threads": a.threads, "weights": weights, "epoch_seconds": times,
               "median_epoch_seconds": statistics.median(times), "eval_images_per_second": len(xs) / eval_s,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
               "torch_version": torch.__version__, "blas_loaded": loaded_blas()},
              sys.stdout)
    print()


if __name__ == "__main__":
    main()
