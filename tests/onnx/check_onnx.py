#!/usr/bin/python3
"""Checks a model exported by `tailor export` with two programs that are not tailor.

1. onnx.checker.check_model(full_check=True) (Debian python3-onnx), plus the contract: input
   'image' (N, C, H, W) with a symbolic N, outputs 'logits' and 'probabilities', class names and
   normalisation in metadata_props, tailor's parameter names on the initializers.
2. OpenCV's dnn module (Debian python3-opencv) runs the model on every test image of DATA_DIR
   (raw pixels 0..255, as the contract says) at two batch sizes: the t10k IDX images, or for an
   image folder (DATA_DIR/test/<class>/*.png) its pictures decoded by OpenCV, classes and files
   in sorted order as tailor reads them, at the model's size already (opaque pictures in the
   model's own colour: OpenCV drops alpha and has its own grey conversion, tailor composites on
   white and takes libpng's); its predictions must equal
   `tailor eval --predictions` for every image and its logits `tailor eval --logits` within TOL
   of the largest logit.

usage: check_onnx.py MODEL.onnx DATA_DIR PREDICTIONS.csv LOGITS.csv [--tol 1e-4] [--batch 500]
Prints one line of figures; exits 1 with a line saying what failed.
"""
import argparse
import csv
import gzip
import json
import os
import struct
import sys

import cv2
import numpy as np
import onnx


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def read_folder_images(test_dir, channels):
    planes = []
    for cls in sorted(c for c in os.listdir(test_dir) if not c.startswith(".")):
        for name in sorted(f for f in os.listdir(os.path.join(test_dir, cls)) if not f.startswith(".")):
            path = os.path.join(test_dir, cls, name)
            if channels == 3:
                bgr = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
                planes.append(bgr[:, :, ::-1].transpose(2, 0, 1))  # (3, H, W), red first
            else:
                planes.append(cv2.imread(path, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)[None])
    if not planes:
        fail(f"no pictures in {test_dir}")
    return np.stack(planes)


def read_idx_images(data_dir):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            raw = (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
            magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
            if magic != 0x803:
                fail(f"{path}: not an IDX image file")
            return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 1, rows, cols)
    fail(f"no t10k-images-idx3-ubyte[.gz] in {data_dir}")


def check_structure(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    if [i.name for i in graph.input] != ["image"]:
        fail(f"inputs are {[i.name for i in graph.input]}, expected ['image']")
    if [o.name for o in graph.output] != ["logits", "probabilities"]:
        fail(f"outputs are {[o.name for o in graph.output]}, expected ['logits', 'probabilities']")
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not dims[0].dim_param or any(d.dim_value <= 0 for d in dims[1:]):
        fail("input 'image' is not (N, C, H, W) with a symbolic N")
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("classes", "normalization", "tailor_version"):
        if key not in meta:
            fail(f"metadata_props lack '{key}'")
    names = {t.name for t in graph.initializer}
    if not any(n.endswith(".weight") and n.split(".")[0].isdigit() for n in names):
        fail(f"initializers do not keep tailor's parameter names: {sorted(names)[:5]}")
    if any(n.op_type == "Dropout" for n in graph.node):
        fail("the graph contains Dropout")
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return model, json.loads(meta["classes"]), opset, [d.dim_value for d in dims[1:]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("predictions")
    ap.add_argument("logits")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=500)
    a = ap.parse_args()

    model, classes, opset, chw = check_structure(a.model)
    test_dir = os.path.join(a.data, "test")
    images = (read_folder_images(test_dir, chw[0]) if os.path.isdir(test_dir) else read_idx_images(a.data))
    images = np.ascontiguousarray(images).astype(np.float32)
    if list(images.shape[1:]) != chw:
        fail(f"test images are {list(images.shape[1:])}, the model takes {chw}")
    with open(a.predictions) as f:
        predicted = np.array([int(r["predicted"]) for r in csv.DictReader(f)])
    with open(a.logits) as f:
        rows = list(csv.reader(f))[1:]
        want = np.array([[float(v) for v in r[1:]] for r in rows], dtype=np.float64)
    if len(predicted) != len(images) or want.shape != (len(images), len(classes)):
        fail(f"{len(images)} test images but {len(predicted)} predictions and {want.shape} logits from tailor")

    net = cv2.dnn.readNetFromONNX(a.model)
    got, probs = [], []
    for start in range(0, len(images), a.batch):
        net.setInput(images[start:start + a.batch])
        z, p = net.forward(["logits", "probabilities"])
        got.append(z)
        probs.append(p)
    got, probs = np.concatenate(got).astype(np.float64), np.concatenate(probs).astype(np.float64)
    net.setInput(images[:1])  # the batch dimension is symbolic: one image works as well
    if not np.allclose(net.forward("logits")[0], got[0], rtol=0, atol=1e-5 * np.abs(got[0]).max()):
        fail("batch 1 gives other logits than batch %d" % a.batch)

    differ = int((got.argmax(1) != predicted).sum())
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    soft = np.exp(got - got.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    prob_err = float(np.abs(probs - soft).max())
    print(f"{os.path.basename(a.model)}: opset {opset}, {len(images)} images; OpenCV {cv2.__version__} and tailor "
          f"disagree on {differ} predictions; largest logit difference {rel:.2e} of the largest logit; "
          f"probabilities within {prob_err:.1e} of softmax(logits)")
    if differ:
        fail(f"{differ} predictions differ")
    if rel > a.tol:
        fail(f"logits differ by {rel:.2e} of the largest logit (allowed {a.tol})")
    if prob_err > 1e-5:
        fail(f"'probabilities' is not softmax('logits') (off by {prob_err})")


if __name__ == "__main__":
    main()
