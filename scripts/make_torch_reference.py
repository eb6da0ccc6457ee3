#!/usr/bin/python3
"""Generate PyTorch reference data for tailor's C++ tests.

Writes one small JSON file per test case into OUTDIR:

  * layer cases   (<case>.json): forward output, input gradient and
    parameter gradients of a single layer (linear, conv2d, maxpool2d,
    avgpool2d, lppool2d (p = 2), batchnorm1d/2d in train and eval mode,
    relu, sigmoid, tanh, flatten, dropout) for a random input and a random
    upstream gradient dy;
  * loss cases    (cross_entropy.json, cross_entropy_large.json): mean
    cross-entropy loss and its gradient with respect to the logits;
    (distillation.json, distillation_smoothed_t4.json): the same for knowledge
    distillation from a teacher's logits (train --teacher);
  * model cases   (model_cnn.json, and model_cnn_avgpool.json and
    model_cnn_lppool.json with the other pools; model_staged.json, a CNN of
    residual stages and a global-average-pool head): a tiny CNN in train mode, with its
    initial parameters, logits, loss, parameter gradients and batch-norm
    running statistics after the forward pass;
  * optimizer cases (optim_<name>.json): three steps of torch.optim
    (SGD, Adam, AdamW, RMSprop) on a 7-element parameter vector.

Conventions
  * Every array is flat, row-major, in PyTorch layout: Linear weight
    (out, in), Conv2d weight (Cout, Cin, K, K), activations (N, C, H, W)
    or (N, F).
  * All inputs, weights, gradients and initial values are drawn as
    float32 (so the float32 C++ code can hold them exactly); every result
    is computed in float64 from those float32 values and stored rounded to
    9 significant digits.
  * Every case reseeds torch, so reruns write byte-identical files.

Rerun with (this is what `make reference` does):

    /usr/bin/python3 scripts/make_torch_reference.py tests/data/torch_ref

Needs PyTorch (Debian's python3-torch, 1.13); use /usr/bin/python3.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


# ---------------------------------------------------------------------------
# helpers

def num(v):
    """A float rounded to 9 significant digits (exact for float32 values)."""
    v = float(v)
    if not math.isfinite(v):
        raise ValueError("non-finite value in reference data")
    r = float("%.9g" % v)
    return 0.0 if r == 0.0 else r  # no "-0.0" in the files


def flat(t):
    """A tensor as a flat list of rounded floats."""
    return [num(v) for v in t.detach().reshape(-1).tolist()]


def num32(v):
    """A float32 value as the shortest decimal that reads back as float32 to
    exactly the same value (0.1 rather than 0.100000001)."""
    f = np.float32(v)
    if float(f) != float(v):
        raise ValueError("value is not a float32")
    r = float(str(f))  # numpy prints float32 in shortest round-trip form
    if np.float32(r) != f:
        raise ValueError("float32 round trip failed")
    return 0.0 if r == 0.0 else r


def flat32(t):
    """A float32 tensor as a flat list of round-trip-exact decimals."""
    return [num32(v) for v in t.detach().reshape(-1).tolist()]


def shape(t):
    return list(t.shape)


def f32_randn(*size, scale=1.0):
    return (torch.randn(*size, dtype=torch.float32) * scale).float()


def f32_uniform(lo, hi, *size):
    return (torch.rand(*size, dtype=torch.float32) * (hi - lo) + lo).float()


def away_from_zero(t, gap=1e-3):
    """Push values within `gap` of 0 out to +-(gap + a bit), float32."""
    t = t.clone()
    small = t.abs() < gap
    t[small] = torch.where(t[small] < 0, torch.full_like(t[small], -0.05),
                           torch.full_like(t[small], 0.05))
    return t.float()


def distinct_values(*size):
    """float32 values without ties: a random permutation of a spaced grid."""
    n = 1
    for s in size:
        n *= s
    perm = torch.randperm(n).to(torch.float32)
    vals = (perm - n / 2.0) * 0.125 + f32_uniform(0.0, 0.05, n)
    return vals.reshape(*size).float()


def ties_and_zero_windows(*size):
    """Values from a small set (ties) and the first 2x2 window of each plane all
    zero: L2 pooling's gradient there is 0 in PyTorch (no NaN), and must be in
    tailor."""
    t = (torch.randint(0, 5, size).to(torch.float32) - 2.0) * 0.5
    t[:, :, 0:2, 0:2] = 0.0
    return t.float()


def write_json(outdir, name, obj):
    """One top-level key per line, values compact; deterministic output."""
    lines = []
    items = list(obj.items())
    for i, (k, v) in enumerate(items):
        sep = "," if i + 1 < len(items) else ""
        lines.append(" %s: %s%s" % (json.dumps(k),
                                     json.dumps(v, separators=(",", ":")), sep))
    text = "{\n" + "\n".join(lines) + "\n}\n"
    path = os.path.join(outdir, name + ".json")
    with open(path, "w") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------------------
# layer cases

class Residual(nn.Module):
    """tailor's residual block: act(body(x) + skip(x)), skip the identity
    when empty (nn.Sequential() returns its input)."""

    def __init__(self, layer):
        super().__init__()
        self.body = nn.Sequential(*[module_for(l) for l in layer["body"]])
        self.skip = nn.Sequential(*[module_for(l) for l in layer["skip"]])
        self.act = module_for({"type": layer.get("activation", "relu")})

    def forward(self, x):
        return self.act(self.body(x) + self.skip(x))


def module_for(layer):
    t = layer["type"]
    if t == "linear":
        return nn.Linear(layer["in"], layer["out"])
    if t == "conv2d":
        return nn.Conv2d(layer["in"], layer["out"], layer["kernel"],
                         stride=layer.get("stride", 1),
                         padding=layer["padding"],
                         groups=layer.get("groups", 1), bias=True)
    if t == "global_avg_pool":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if t == "residual":
        return Residual(layer)
    if t == "maxpool2d":
        return nn.MaxPool2d(layer["kernel"], stride=layer["kernel"],
                            ceil_mode=False)
    if t == "avgpool2d":
        return nn.AvgPool2d(layer["kernel"], stride=layer["kernel"],
                            ceil_mode=False)
    if t == "lppool2d":
        return nn.LPPool2d(layer["p"], layer["kernel"], stride=layer["kernel"],
                           ceil_mode=False)
    if t == "batchnorm1d":
        return nn.BatchNorm1d(layer["features"], eps=BN_EPS,
                              momentum=BN_MOMENTUM, affine=True)
    if t == "batchnorm2d":
        return nn.BatchNorm2d(layer["channels"], eps=BN_EPS,
                              momentum=BN_MOMENTUM, affine=True)
    if t == "relu":
        return nn.ReLU()
    if t == "sigmoid":
        return nn.Sigmoid()
    if t == "tanh":
        return nn.Tanh()
    if t == "flatten":
        return nn.Flatten()
    if t == "dropout":
        return nn.Dropout(layer["p"])
    raise ValueError("unknown layer type " + t)


def layer_case(outdir, seed, case, layer, mode, input_shape, make_input=None,
               params=None, buffers=None):
    """Run one layer forward/backward in float64 and write its case file.

    `params` / `buffers` map PyTorch names to float32 tensors; when `params`
    is None the layer's parameters are drawn randomly (float32) here.
    """
    torch.manual_seed(seed)
    mod = module_for(layer)

    # parameters: random float32, non-trivial; a batch norm's scale in [0.5, 1.5]
    def is_batchnorm(name):
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        m = mod.get_submodule(owner) if owner else mod
        return isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))

    pvals = {}
    for name, p in mod.named_parameters():
        if params is not None and name in params:
            pvals[name] = params[name].float()
        elif name.endswith("weight") and is_batchnorm(name):
            pvals[name] = f32_uniform(0.5, 1.5, *p.shape)
        else:
            pvals[name] = f32_uniform(-0.6, 0.6, *p.shape)
    bvals = {}
    for name, b in mod.named_buffers():  # every batch norm's, nested ones too
        if name.endswith("running_mean"):
            bvals[name] = (buffers or {}).get(name, f32_randn(b.numel(), scale=0.5))
        elif name.endswith("running_var"):
            bvals[name] = (buffers or {}).get(name, f32_uniform(0.5, 2.0, b.numel()))

    x32 = make_input(*input_shape) if make_input else f32_randn(*input_shape)
    x32 = x32.float()

    mod = mod.double()
    with torch.no_grad():
        for name, p in mod.named_parameters():
            p.copy_(pvals[name].double())
        for name, b in bvals.items():
            mod.get_buffer(name).copy_(b.double())
    mod.train(mode == "train")

    x = x32.double().requires_grad_(True)
    if layer["type"] == "dropout":
        torch.manual_seed(seed + 1000)  # the draw that produces the mask
    y = mod(x)
    dy32 = f32_randn(*y.shape)
    dy = dy32.double()
    plist = [p for _, p in mod.named_parameters()]
    grads = torch.autograd.grad((y * dy).sum(), [x] + plist)
    gx, gps = grads[0], grads[1:]

    out = {"case": case, "layer": layer, "mode": mode,
           "input_shape": shape(x32), "input": flat32(x32),
           "params": {n: flat32(v) for n, v in pvals.items()}}
    if bvals:
        out["buffers_before"] = {n: flat32(v) for n, v in bvals.items()}
    if layer["type"] == "dropout":
        mask = (y != 0).to(torch.int64)
        # check: torch's output is exactly x * mask / (1 - p)
        expect = x.detach() * mask.double() / (1.0 - layer["p"])
        assert torch.allclose(y.detach(), expect, rtol=1e-15, atol=0.0)
        out["mask"] = mask.reshape(-1).tolist()
    out["output_shape"] = shape(y)
    out["output"] = flat(y)
    out["grad_output"] = flat32(dy32)
    out["grad_input"] = flat(gx)
    out["grad_params"] = {n: flat(g) for (n, _), g in
                          zip(mod.named_parameters(), gps)}
    if bvals:
        out["buffers_after"] = {n: flat(mod.get_buffer(n)) for n in bvals}
    return write_json(outdir, case, out)


def relu_input(*size):
    return away_from_zero(f32_randn(*size))


def nonzero_input(*size):
    return away_from_zero(f32_randn(*size), gap=1e-2)


def layer_cases(outdir):
    files = []
    L = layer_case
    files.append(L(outdir, 101, "linear",
                   {"type": "linear", "in": 5, "out": 4}, "train", [3, 5]))
    files.append(L(outdir, 102, "linear_n1_in1",
                   {"type": "linear", "in": 1, "out": 3}, "train", [1, 1]))
    files.append(L(outdir, 103, "conv2d",
                   {"type": "conv2d", "in": 1, "out": 3, "kernel": 3,
                    "padding": 1}, "train", [2, 1, 5, 5]))
    files.append(L(outdir, 104, "conv2d_odd",
                   {"type": "conv2d", "in": 2, "out": 4, "kernel": 3,
                    "padding": 1}, "train", [3, 2, 6, 7]))
    files.append(L(outdir, 105, "conv2d_p0",
                   {"type": "conv2d", "in": 3, "out": 2, "kernel": 3,
                    "padding": 0}, "train", [2, 3, 5, 5]))
    files.append(L(outdir, 106, "conv2d_k5",
                   {"type": "conv2d", "in": 1, "out": 1, "kernel": 5,
                    "padding": 2}, "train", [1, 1, 4, 6]))
    files.append(L(outdir, 107, "conv2d_k5_spatial1",
                   {"type": "conv2d", "in": 2, "out": 2, "kernel": 5,
                    "padding": 2}, "train", [1, 2, 1, 1]))
    files.append(L(outdir, 108, "maxpool2d_odd",
                   {"type": "maxpool2d", "kernel": 2}, "train", [2, 2, 5, 7],
                   make_input=distinct_values))
    files.append(L(outdir, 109, "maxpool2d_4x4",
                   {"type": "maxpool2d", "kernel": 2}, "train", [2, 1, 4, 4],
                   make_input=distinct_values))
    files.append(L(outdir, 119, "avgpool2d_odd",
                   {"type": "avgpool2d", "kernel": 2}, "train", [2, 2, 5, 7]))
    files.append(L(outdir, 120, "avgpool2d_k3",
                   {"type": "avgpool2d", "kernel": 3}, "train", [2, 1, 7, 8]))
    files.append(L(outdir, 121, "lppool2d_odd",
                   {"type": "lppool2d", "p": 2, "kernel": 2}, "train",
                   [2, 2, 5, 7], make_input=ties_and_zero_windows))
    files.append(L(outdir, 122, "lppool2d_k3",
                   {"type": "lppool2d", "p": 2, "kernel": 3}, "train",
                   [2, 1, 7, 8]))
    files.append(L(outdir, 110, "batchnorm1d_train",
                   {"type": "batchnorm1d", "features": 4}, "train", [6, 4],
                   make_input=lambda *s: f32_randn(*s, scale=1.5) + 0.7))
    files.append(L(outdir, 111, "batchnorm2d_train",
                   {"type": "batchnorm2d", "channels": 2}, "train",
                   [3, 2, 4, 5],
                   make_input=lambda *s: f32_randn(*s, scale=1.5) - 0.4))
    files.append(L(outdir, 112, "batchnorm1d_eval",
                   {"type": "batchnorm1d", "features": 4}, "eval", [5, 4]))
    files.append(L(outdir, 113, "batchnorm2d_eval",
                   {"type": "batchnorm2d", "channels": 3}, "eval",
                   [2, 3, 3, 4]))
    files.append(L(outdir, 114, "relu", {"type": "relu"}, "train",
                   [2, 3, 3, 4], make_input=relu_input))
    files.append(L(outdir, 115, "sigmoid", {"type": "sigmoid"}, "train",
                   [3, 5], make_input=lambda *s: f32_randn(*s, scale=2.5)))
    files.append(L(outdir, 116, "tanh", {"type": "tanh"}, "train",
                   [2, 2, 3, 3], make_input=lambda *s: f32_randn(*s, scale=1.5)))
    files.append(L(outdir, 117, "flatten", {"type": "flatten"}, "train",
                   [2, 3, 2, 4]))
    files.append(L(outdir, 118, "dropout", {"type": "dropout", "p": 0.3},
                   "train", [4, 3, 2, 5], make_input=nonzero_input))
    # The layers of CNNs built from stages (--arch): strided, grouped and
    # depthwise convolutions, 5x5 kernels, global average pooling, residual
    # blocks (identity and projected skips, relu and tanh, train and eval).
    conv = lambda i, o, k, s=1, g=1: {"type": "conv2d", "in": i, "out": o, "kernel": k,
                                      "padding": k // 2, "stride": s, "groups": g}
    bn = lambda c: {"type": "batchnorm2d", "channels": c}
    relu = {"type": "relu"}
    files.append(L(outdir, 130, "conv2d_stride2", conv(3, 4, 3, 2), "train", [2, 3, 7, 8]))
    files.append(L(outdir, 131, "conv2d_k5_stride2", conv(2, 3, 5, 2), "train", [2, 2, 9, 6]))
    files.append(L(outdir, 132, "conv2d_grouped", conv(4, 6, 3, 1, 2), "train", [2, 4, 5, 6]))
    files.append(L(outdir, 133, "conv2d_depthwise", conv(4, 4, 3, 1, 4), "train", [2, 4, 5, 6]))
    files.append(L(outdir, 134, "conv2d_depthwise_k5_stride2", conv(3, 3, 5, 2, 3), "train", [2, 3, 7, 7]))
    files.append(L(outdir, 135, "global_avg_pool", {"type": "global_avg_pool"}, "train", [3, 4, 5, 6]))
    identity = {"type": "residual", "body": [conv(4, 4, 3), bn(4), relu, conv(4, 4, 3), bn(4)], "skip": [],
                "activation": "relu"}
    projected = {"type": "residual", "body": [conv(3, 5, 3, 2), bn(5), relu, conv(5, 5, 3), bn(5)],
                 "skip": [conv(3, 5, 1, 2), bn(5)], "activation": "relu"}
    separable = {"type": "residual",
                 "body": [conv(4, 4, 3, 1, 4), bn(4), relu, conv(4, 6, 1), bn(6), relu,
                          conv(6, 6, 3, 1, 6), bn(6), relu, conv(6, 6, 1), bn(6)],
                 "skip": [conv(4, 6, 1), bn(6)], "activation": "relu"}
    files.append(L(outdir, 136, "residual_identity", identity, "train", [2, 4, 6, 6]))
    files.append(L(outdir, 137, "residual_projected_stride2", projected, "train", [2, 3, 7, 7]))
    files.append(L(outdir, 138, "residual_eval", projected, "eval", [2, 3, 6, 6]))
    files.append(L(outdir, 139, "residual_tanh", dict(identity, activation="tanh"), "train", [2, 4, 5, 5]))
    files.append(L(outdir, 140, "residual_separable", separable, "train", [2, 4, 6, 5]))
    return files


# ---------------------------------------------------------------------------
# cross entropy

def cross_entropy_case(outdir, seed, case, n, k, large):
    torch.manual_seed(seed)
    if large:
        # magnitudes 40..60 with random signs: naive exp() would overflow
        sign = torch.randint(0, 2, (n, k)).to(torch.float32) * 2.0 - 1.0
        logits32 = (sign * f32_uniform(40.0, 60.0, n, k)).float()
    else:
        logits32 = f32_randn(n, k, scale=1.5)
    labels = torch.randint(0, k, (n,), dtype=torch.int64)
    z = logits32.double().requires_grad_(True)
    loss = F.cross_entropy(z, labels, reduction="mean")
    (g,) = torch.autograd.grad(loss, [z])
    out = {"case": case, "logits_shape": [n, k], "logits": flat32(logits32),
           "labels": labels.tolist(), "loss": num(loss),
           "grad_logits": flat(g)}
    return write_json(outdir, case, out)


def distillation_case(outdir, seed, case, n, k, smoothing, weight, temperature):
    """Knowledge distillation as Hinton et al. write it, from torch's own pieces:
    (1 - w) cross_entropy(z, y, label_smoothing) + w T^2 kl_div(log_softmax(z / T),
    softmax(t / T), batchmean), and its gradient with respect to the student's logits z."""
    torch.manual_seed(seed)
    logits32 = f32_randn(n, k, scale=1.5)
    teacher32 = f32_randn(n, k, scale=3.0)
    labels = torch.randint(0, k, (n,), dtype=torch.int64)
    z = logits32.double().requires_grad_(True)
    t = teacher32.double()
    hard = F.cross_entropy(z, labels, reduction="mean", label_smoothing=smoothing)
    soft = F.kl_div(F.log_softmax(z / temperature, dim=1), F.softmax(t / temperature, dim=1),
                    reduction="batchmean") * temperature * temperature
    loss = (1.0 - weight) * hard + weight * soft
    (g,) = torch.autograd.grad(loss, [z])
    out = {"case": case, "logits_shape": [n, k], "logits": flat32(logits32),
           "teacher": flat32(teacher32), "labels": labels.tolist(),
           "label_smoothing": smoothing, "weight": weight, "temperature": temperature,
           "loss": num(loss), "grad_logits": flat(g)}
    return write_json(outdir, case, out)


# ---------------------------------------------------------------------------
# whole model

MODEL_LAYERS = [
    {"type": "conv2d", "in": 1, "out": 3, "kernel": 3, "padding": 1},
    {"type": "batchnorm2d", "channels": 3},
    {"type": "relu"},
    {"type": "maxpool2d", "kernel": 2},
    {"type": "conv2d", "in": 3, "out": 4, "kernel": 3, "padding": 1},
    {"type": "batchnorm2d", "channels": 4},
    {"type": "relu"},
    {"type": "maxpool2d", "kernel": 2},
    {"type": "flatten"},
    {"type": "linear", "in": 16, "out": 6},
    {"type": "batchnorm1d", "features": 6},
    {"type": "relu"},
    {"type": "linear", "in": 6, "out": 3},
]


# A CNN of stages, as `--arch "4,max | 6x2,res,s2 | 6x2,res | gap"` builds it,
# in PyTorch's modules (tailor fuses each batch norm with its relu).
STAGED_LAYERS = [
    {"type": "conv2d", "in": 1, "out": 4, "kernel": 3, "padding": 1},
    {"type": "batchnorm2d", "channels": 4},
    {"type": "relu"},
    {"type": "maxpool2d", "kernel": 2},
    {"type": "residual", "activation": "relu",
     "body": [{"type": "conv2d", "in": 4, "out": 6, "kernel": 3, "padding": 1, "stride": 2},
              {"type": "batchnorm2d", "channels": 6}, {"type": "relu"},
              {"type": "conv2d", "in": 6, "out": 6, "kernel": 3, "padding": 1},
              {"type": "batchnorm2d", "channels": 6}],
     "skip": [{"type": "conv2d", "in": 4, "out": 6, "kernel": 1, "padding": 0, "stride": 2},
              {"type": "batchnorm2d", "channels": 6}]},
    {"type": "residual", "activation": "relu",
     "body": [{"type": "conv2d", "in": 6, "out": 6, "kernel": 3, "padding": 1},
              {"type": "batchnorm2d", "channels": 6}, {"type": "relu"},
              {"type": "conv2d", "in": 6, "out": 6, "kernel": 3, "padding": 1},
              {"type": "batchnorm2d", "channels": 6}],
     "skip": []},
    {"type": "global_avg_pool"},
    {"type": "linear", "in": 6, "out": 3},
]


def with_pool(layers, pool):
    """MODEL_LAYERS with every max-pool replaced by `pool` (a layer dict)."""
    return [dict(pool) if l["type"] == "maxpool2d" else l for l in layers]


def model_case(outdir, seed, name="model_cnn", layers=MODEL_LAYERS):
    torch.manual_seed(seed)
    # torch default initialisation, in float32, from the seed
    model = nn.Sequential(*[module_for(l) for l in layers])
    init = [(n, p.detach().clone()) for n, p in model.named_parameters()]
    n_batch, n_classes = 4, 3
    x32 = f32_randn(n_batch, 1, 8, 8)
    labels = torch.randint(0, n_classes, (n_batch,), dtype=torch.int64)

    model = model.double()
    model.train()
    logits = model(x32.double())
    loss = F.cross_entropy(logits, labels, reduction="mean")
    plist = [p for _, p in model.named_parameters()]
    grads = torch.autograd.grad(loss, plist)

    out = {"case": name, "mode": "train", "layers": layers,
           "params": [{"name": n, "shape": shape(v), "value": flat32(v)}
                      for n, v in init],
           "input_shape": shape(x32), "input": flat32(x32),
           "labels": labels.tolist(),
           "logits_shape": shape(logits), "logits": flat(logits),
           "loss": num(loss),
           "grads": [{"name": n, "shape": shape(g), "value": flat(g)}
                     for (n, _), g in zip(init, grads)],
           "buffers_after": [{"name": n, "shape": shape(b), "value": flat(b)}
                             for n, b in model.named_buffers()
                             if not n.endswith("num_batches_tracked")]}
    return write_json(outdir, name, out)


# ---------------------------------------------------------------------------
# optimizers

OPTIM_DEFAULTS = {"lr": 0.01, "momentum": 0.0, "dampening": 0.0,
                  "nesterov": False, "weight_decay": 0.0,
                  "betas": [0.9, 0.999], "eps": 1e-8, "alpha": 0.99,
                  "centered": False, "amsgrad": False}


def make_optimizer(kind, params, s):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=s["lr"], momentum=s["momentum"],
                               dampening=s["dampening"],
                               nesterov=s["nesterov"],
                               weight_decay=s["weight_decay"])
    if kind == "adam":
        return torch.optim.Adam(params, lr=s["lr"], betas=tuple(s["betas"]),
                                eps=s["eps"], weight_decay=s["weight_decay"],
                                amsgrad=False)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=s["lr"], betas=tuple(s["betas"]),
                                 eps=s["eps"], weight_decay=s["weight_decay"],
                                 amsgrad=False)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=s["lr"], alpha=s["alpha"],
                                   eps=s["eps"],
                                   weight_decay=s["weight_decay"],
                                   momentum=s["momentum"], centered=False)
    raise ValueError(kind)


def optim_case(outdir, seed, name, kind, **settings):
    torch.manual_seed(seed)
    s = dict(OPTIM_DEFAULTS)
    s.update(settings)
    init32 = f32_randn(7)
    grads32 = [f32_randn(7, scale=0.5) for _ in range(3)]
    p = init32.double().clone().requires_grad_(True)
    opt = make_optimizer(kind, [p], s)
    after = []
    for g in grads32:
        opt.zero_grad()
        p.grad = g.double().clone()
        opt.step()
        after.append(flat(p))
    out = {"case": "optim_" + name, "optimizer": kind}
    for k in ("lr", "momentum", "dampening", "nesterov", "weight_decay",
              "betas", "eps", "alpha", "centered", "amsgrad"):
        out[k] = s[k]
    out["initial"] = flat32(init32)
    out["grads"] = [flat32(g) for g in grads32]
    out["after"] = after
    return write_json(outdir, "optim_" + name, out)


def optim_cases(outdir):
    O = optim_case
    return [
        O(outdir, 301, "sgd", "sgd", lr=0.1),
        O(outdir, 302, "sgd_momentum", "sgd", lr=0.1, momentum=0.9),
        O(outdir, 303, "sgd_nesterov", "sgd", lr=0.1, momentum=0.9,
          nesterov=True),
        O(outdir, 304, "sgd_weight_decay", "sgd", lr=0.1, momentum=0.9,
          weight_decay=0.01),
        O(outdir, 305, "adam", "adam", lr=0.01),
        O(outdir, 306, "adam_weight_decay", "adam", lr=0.01,
          weight_decay=0.01),
        O(outdir, 307, "adamw", "adamw", lr=0.01, weight_decay=0.01),
        O(outdir, 308, "rmsprop", "rmsprop", lr=0.01),
        O(outdir, 309, "rmsprop_momentum", "rmsprop", lr=0.01, momentum=0.9),
    ]


# ---------------------------------------------------------------------------
# summary

def summarize(path):
    with open(path) as f:
        d = json.load(f)
    name = os.path.basename(path)
    size = os.path.getsize(path)
    if "layer" in d:
        info = "%s %s in%s out%s params[%s]" % (
            d["layer"]["type"], d["mode"], d["input_shape"],
            d["output_shape"], ",".join(d["params"]))
    elif d["case"].startswith(("cross_entropy", "distillation")):
        info = "logits%s loss=%.6g" % (d["logits_shape"], d["loss"])
    elif d["case"].startswith("model_"):
        info = "%d layers, %d params, loss=%.6g" % (
            len(d["layers"]), sum(len(p["value"]) for p in d["params"]),
            d["loss"])
    else:
        info = "%s lr=%g final[0]=%.6g" % (d["optimizer"], d["lr"],
                                           d["after"][-1][0])
    print("%-32s %7d B  %s" % (name, size, info))
    return size


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s OUTDIR\n" % argv[0])
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    files = []
    files += layer_cases(outdir)
    files.append(cross_entropy_case(outdir, 201, "cross_entropy", 5, 10, False))
    files.append(distillation_case(outdir, 203, "distillation", 6, 10, 0.0, 0.9, 1.0))
    files.append(distillation_case(outdir, 204, "distillation_smoothed_t4", 6, 10, 0.1, 0.5, 4.0))
    files.append(cross_entropy_case(outdir, 202, "cross_entropy_large", 5, 10,
                                    True))
    files.append(model_case(outdir, 250))
    files.append(model_case(outdir, 251, "model_cnn_avgpool", with_pool(
        MODEL_LAYERS, {"type": "avgpool2d", "kernel": 2})))
    files.append(model_case(outdir, 252, "model_cnn_lppool", with_pool(
        MODEL_LAYERS, {"type": "lppool2d", "p": 2, "kernel": 2})))
    files.append(model_case(outdir, 253, "model_staged", STAGED_LAYERS))
    files += optim_cases(outdir)
    total = sum(summarize(p) for p in files)
    print("%d files, %d bytes in %s" % (len(files), total, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
