#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus, tests/fuzz/corpus/<harness>/, small valid (and nearly valid)
inputs for each harness to mutate. Run from the repository root after a build (the checkpoint
seeds are made by build/tailor itself):  /usr/bin/python3 tests/fuzz/make_seeds.py
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
TAILOR = os.path.join(ROOT, "build", "tailor")


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def png(width, height, colour_type, depth, rows, palette=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\0" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def images():
    w, h = 6, 5
    grey = [bytes((x * 40 + y * 7) % 256 for x in range(w)) for y in range(h)]
    put("image", "grey8.png", png(w, h, 0, 8, grey))
    put("image", "grey16.png", png(w, h, 0, 16, [bytes(b for v in r for b in (v, v)) for r in grey]))
    put("image", "rgb.png", png(w, h, 2, 8, [bytes(c for v in r for c in (v, 255 - v, v // 2)) for r in grey]))
    put("image", "rgba.png", png(w, h, 6, 8, [bytes(c for v in r for c in (v, v, 0, v)) for r in grey]))
    put("image", "palette.png", png(w, h, 3, 8, [bytes(v % 3 for v in r) for r in grey], palette=b"\0\0\0\x80\x80\x80\xff\xff\xff"))
    put("image", "grey1bit.png", png(8, 2, 0, 1, [b"\xaa", b"\x55"]))
    put("image", "p5.pgm", b"P5\n6 5\n255\n" + b"".join(grey))
    put("image", "p5-16bit.pgm", b"P5\n# comment\n3 2\n65535\n" + bytes(range(12)))
    put("image", "p2.pgm", "P2\n3 2\n15\n0 5 10\n15 3 7\n")
    try:
        import cv2
        import numpy as np
        a = np.array([list(r) for r in grey], dtype=np.uint8)
        put("image", "baseline.jpg", cv2.imencode(".jpg", a)[1].tobytes())
        put("image", "progressive.jpg", cv2.imencode(".jpg", np.dstack([a, a, 255 - a]), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes())
    except ImportError:
        print("make_seeds: no python3-opencv, so no JPEG seeds", file=sys.stderr)


def idx_seeds():
    labels = idx([5], bytes([0, 1, 2, 1, 0]))
    imgs = idx([2, 3, 3], bytes(range(18)))
    put("idx", "labels.idx1", labels)
    put("idx", "images.idx3", imgs)
    put("idx", "labels.idx1.gz", gzip.compress(labels, mtime=0))
    put("idx", "images.idx3.gz", gzip.compress(imgs, mtime=0))
    put("idx", "two-members.gz", gzip.compress(imgs[:10], mtime=0) + gzip.compress(imgs[10:], mtime=0))
    put("idx", "truncated.idx3", imgs[:-3])


def checkpoint_body(meta, arrays):
    """A tailor checkpoint without its trailing CRC-32 (the harness appends it)."""
    body = json.dumps(meta).encode()
    out = b"TAILORCK" + struct.pack("<IQ", 1, len(body)) + body
    for a in arrays:
        out += struct.pack("<Q", len(a)) + struct.pack("<%df" % len(a), *a)
    return out


def checkpoint_seeds():
    if not os.path.exists(TAILOR):
        print("make_seeds: %s not built, so no checkpoint seeds" % TAILOR, file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as tmp:
        # A tiny data set (8x8, 3 classes) in IDX form, as tests/tiny_data.cpp makes it.
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        for prefix, n in (("train", 60), ("t10k", 30)):
            pix = bytes(((i * 37 + j * 11) % 60) + (150 if j // 8 == (2 * (i % 3) + 1) else 0) for i in range(n) for j in range(64))
            open(os.path.join(data, prefix + "-images-idx3-ubyte"), "wb").write(idx([n, 8, 8], pix))
            open(os.path.join(data, prefix + "-labels-idx1-ubyte"), "wb").write(idx([n], bytes(i % 3 for i in range(n))))
        for name, args in (("fcn", ["--model", "fcn", "--hidden", "5"]),
                           ("fcn-nobn", ["--model", "fcn", "--hidden", "4,3", "--no-batchnorm", "--dropout", "0"]),
                           ("cnn", ["--model", "cnn", "--channels", "2", "--hidden", "4"])):
            run = os.path.join(tmp, name)
            subprocess.run([TAILOR, "train", *args, "--epochs", "1", "--val", "6", "--data", data, "--out", run,
                            "--progress", "none"], check=True, stdout=subprocess.DEVNULL)
            ck = open(os.path.join(run, "model.ckpt"), "rb").read()
            put("checkpoint", name + ".ckpt", ck[:-4])
            if name == "fcn-nobn":
                config = open(os.path.join(run, "config.toml")).read()
                put("sweep", "config.toml", config)


def resume_seeds():
    # The shape fuzz_resume.cpp checks against: 20 values, 4 statistics, 40 optimizer floats,
    # one dropout stream, 5 epochs.
    meta = {"format": "tailor resume state", "version": "0.1.0", "epoch": 2, "steps": 30, "shuffle_rng": 12345,
            "augment_rng": 678, "dropout_rngs": [91011], "metrics": "epoch,train_loss\n1,0.5\n2,0.4\n",
            "train_seconds": 1.5, "elapsed_seconds": 2.0, "epoch_seconds": [0.7, 0.8],
            "val": {"loss": 0.4, "acc": 80.0, "count": 6}, "test": {"loss": 0.45, "acc": 78.0, "count": 30},
            "stop_reason": "", "best_val_loss": 0.4, "best_epoch": 2, "since_best": 0, "best_steps": 30,
            "has_best": False}
    v, s, o = [0.1 * i for i in range(20)], [1.0] * 4, [0.0] * 40
    put("resume", "plain.state", checkpoint_body(meta, [v, s, o]))
    best = dict(meta, has_best=True, best_val_loss=None, best_epoch=1, since_best=1)
    put("resume", "with-best.state", checkpoint_body(best, [v + v, s + s, o + o]))


def sweep_seeds():
    for f in sorted(os.listdir(os.path.join(ROOT, "experiments"))):
        if f.endswith(".toml"):
            shutil.copy(os.path.join(ROOT, "experiments", f), os.path.join(OUT, "sweep", f))
    for f in sorted(os.listdir(os.path.join(ROOT, "experiments", "search"))):  # search spaces
        if f.endswith(".toml"):
            shutil.copy(os.path.join(ROOT, "experiments", "search", f), os.path.join(OUT, "sweep", "search_" + f))
    put("sweep", "journal.jsonl",
        '{"type":"search","space":"0123456789abcdef","name":"t"}\n'
        '{"type":"sample","trial":0,"point":{"lr":"0.001"},"weights":100,"mflops":0.1,"to":1,"t":0.1}\n'
        '{"type":"epoch","trial":0,"epoch":1,"val_acc":80.5,"val_loss":0.5,"seconds":1.0,"t":1.2}\n'
        '{"type":"rung","trial":0,"rung":0,"epoch":1,"val_acc":80.5,"val_loss":0.5,"train_seconds":1.0,"t":1.2}\n'
        '{"type":"epo')
    put("sweep", "grid.toml", 'name = "g"\nseeds = [1, 2]\n[base]\nmodel = "fcn"\nhidden = [20, 10]\nepochs = 2\n'
        '[[row]]\nname = "a"\nlr = 0.01\n[grid]\noptimizer = ["sgd", "adam"]\nbatchnorm = [true, false]\n'
        '[random]\ntrials = 2\ndropout = { uniform = [0.0, 0.5] }\nmomentum = { choice = [0.0, 0.9] }\n'
        'batch-size = { int_uniform = [16, 64] }\nweight-decay = { log_uniform = [1e-5, 1e-3] }\n')
    # What fuzz_sweep found: draws below the smallest normal double (std::stod threw), and journal
    # fields of the wrong type (json::value threw).
    put("sweep", "subnormal.toml", 'name = "tiny"\n[base]\nmodel = "fcn"\n[random]\ntrials = 3\n'
        'dropout = { uniform = [0.0, 1e-320] }\n')
    put("sweep", "journal-number-space.jsonl", '{"type":"search","space":1.0,"t":1.2}\n{"type":7,"trial":0}\n')


def http_seeds():
    reqs = {
        "runs": "GET /api/runs HTTP/1.1\r\nHost: x\r\n\r\n",
        "health": "GET /api/health HTTP/1.1\r\n\r\n",
        "confusion": "GET /api/confusion?run=0 HTTP/1.1\r\nConnection: close\r\n\r\n",
        "cell": "GET /api/cell?run=0&true=1&pred=2&limit=5 HTTP/1.1\r\n\r\n",
        "testimage": "GET /api/testimage/3.png?scale=2 HTTP/1.1\r\n\r\n",
        "index": "GET / HTTP/1.1\r\n\r\n",
        "static": "GET /static/app.js HTTP/1.1\r\nRange: bytes=0-10\r\n\r\n",
        "notfound": "GET /nothing HTTP/1.0\r\n\r\n",
    }
    for name, r in reqs.items():
        put("http", name, r)
    pgm = b"P5\n8 8\n255\n" + bytes(range(0, 256, 4))
    put("http", "predict", b"POST /api/predict?runs=0&saliency=1 HTTP/1.1\r\nContent-Type: image/x-portable-graymap\r\n"
        b"Content-Length: %d\r\n\r\n" % len(pgm) + pgm)
    put("http", "predict-raw", b"POST /api/predict?convert=0 HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(pgm) + pgm)
    put("http", "chunked", b"POST /api/predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nP5\n1 \r\n0\r\n\r\n")


if __name__ == "__main__":
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "sweep"))
    images()
    idx_seeds()
    checkpoint_seeds()
    resume_seeds()
    sweep_seeds()
    http_seeds()
    for h in sorted(os.listdir(OUT)):
        print("%s: %d seeds" % (h, len(os.listdir(os.path.join(OUT, h)))))
