#!/usr/bin/python3
"""Writes the PyTorch reference fixtures of the layer library's parity tests.

    /usr/bin/python3 tests/gen_fixtures.py tests/fixtures

For each layer, 100 random trials in the Torch7-protocol style of the reference suite
(modules.py tests): small random sizes, a fresh layer with PyTorch's random parameters
(stored, so shardnet computes from the same weights), input uniform in [-10, 10]
([-5, 5] where the reference suite uses it), a random output gradient; PyTorch's output,
input gradient and parameter gradients are stored next to them. Conv2d and MaxPool2d get a
handful of geometries (stride, padding, odd sizes, the MNIST ConvNet shapes; padded max
pooling, ResNet's stem, in its own file), Adadelta a
few steps on fixed gradients.

The output must be byte-for-byte reproducible: every file seeds torch itself, torch runs on
one thread, and the writer (fixture_io.py) emits tensors in insertion order. It must not
use any other random source (numpy, random) and must not change a file's content unless
the test it feeds changes too. Needs Debian's python3-torch (1.13) under /usr/bin/python3;
the tests themselves read only the committed files.

Next to each float32 PyTorch result NAME the file holds NAME_f64: the same computation in
float64 (torch .double() on the same float32 inputs, weights and hyper-parameters), exact
to far below float32 precision, so the tests compare against the value itself and not
against one float32 summation order. Where the value is a sum (dot products, reductions)
NAME_mag (float32, rounded up) holds the float64 sum of the absolute values of its terms,
with first-order propagation through the few elementwise operations around the sum: the
scale of the rounding error any float32 evaluation order can make (test_parity.c).
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import Fixture  # noqa: E402

TRIALS = 100
BN_EPS = 1e-5              # SN_BN_EPS
NLL_UNSTABLE_EPS = 1e-15   # SN_NLL_UNSTABLE_EPS


def uniform(shape, lo, hi):
    return torch.rand(shape, dtype=torch.float32) * (hi - lo) + lo


def randint(lo, hi):
    """An integer in [lo, hi] inclusive."""
    return int(torch.randint(lo, hi + 1, (1,)).item())


def run(layer, x, dy):
    """Forward and backward of a torch module; returns (y, dx)."""
    x = x.clone().requires_grad_(True)
    y = layer(x)
    y.backward(dy)
    return y.detach(), x.grad.detach()


def add_exact(fx, name, exact, mag=None):
    """The float64 value of float32 result NAME (added just before), stored as
    NAME_d = float64 - float32 in float32: minus PyTorch's float32 rounding error, so
    NAME + NAME_d is the float64 value to within 2^-24 of that error (far below any
    float32 rounding), at half the size of float64. For a sum, NAME_mag: the magnitude,
    rounded up to float32."""
    ref = fx.items[-1] if fx.items[-1][0] == name else next(i for i in fx.items if i[0] == name)
    ref32 = torch.from_numpy(ref[1]).double()
    exact = exact.detach().double()
    assert ref32.shape == exact.shape, name
    fx.add(name + "_d", (exact - ref32).float())
    if mag is not None:
        mag = mag.detach().double()
        m32 = mag.float()
        m32 = torch.where(m32.double() < mag, torch.nextafter(m32, torch.tensor(float("inf"))), m32)
        fx.add(name + "_mag", m32)


def f32(v):
    """A Python float rounded to float32, as shardnet receives a hyper-parameter."""
    return float(torch.tensor(v, dtype=torch.float32).item())


def abs_twin(layer):
    """A float64 copy of a Linear/Conv2d layer with |W| and |b|: run on |x| with output
    gradient |dy|, its output, input and parameter gradients are the magnitudes of the
    terms of y, dx, dW and db."""
    a = copy.deepcopy(layer).double()
    with torch.no_grad():
        for q in a.parameters():
            q.abs_()
            q.grad = None
    return a


def logsoftmax_mag(x):
    """Magnitude of y = (x - max) - log(sum exp(x - max)), float64: the terms, and 1 for
    the absolute error of the log of a sum with relative error (its argument is >= 1)."""
    sh = x - x.max(dim=1, keepdim=True).values
    return sh.abs() + torch.log(torch.exp(sh).sum(dim=1, keepdim=True)) + 1.0


def softmax_dy(shape):
    """The reference suite's output gradient for (Log)SoftMax: 1 / normalised rand, up to
    1e5 (stored as dy_ref next to a plain uniform dy)."""
    g = torch.rand(shape, dtype=torch.float32)
    g = g / g.sum(dim=-1, keepdim=True)
    return 1.0 / g.clamp(1e-5, 1.0)


def gen_linear(fx):
    for t in range(TRIALS):
        B, n_in, n_out = randint(2, 9), randint(3, 9), randint(3, 9)
        layer = torch.nn.Linear(n_in, n_out)
        x, dy = uniform((B, n_in), -10, 10), uniform((B, n_out), -10, 10)
        l64, la = copy.deepcopy(layer).double(), abs_twin(layer)
        y, dx = run(layer, x, dy)
        p = f"t{t}."
        for name, v in (("x", x), ("w", layer.weight), ("b", layer.bias), ("dy", dy), ("y", y),
                        ("dx", dx), ("dw", layer.weight.grad), ("db", layer.bias.grad)):
            fx.add(p + name, v)
        y64, dx64 = run(l64, x.double(), dy.double())
        ya, dxa = run(la, x.double().abs(), dy.double().abs())
        for name, v, m in (("y", y64, ya), ("dx", dx64, dxa), ("dw", l64.weight.grad, la.weight.grad),
                           ("db", l64.bias.grad, la.bias.grad)):
            add_exact(fx, p + name, v, m)


def gen_softmax(fx, log):
    for t in range(TRIALS):
        B, n = randint(2, 9), randint(3, 9)
        layer = torch.nn.LogSoftmax(dim=1) if log else torch.nn.Softmax(dim=1)
        x, dy, dy_ref = uniform((B, n), -10, 10), uniform((B, n), -10, 10), softmax_dy((B, n))
        y, dx = run(layer, x, dy)
        _, dx_ref = run(layer, x, dy_ref)
        for name, v in (("x", x), ("dy", dy), ("y", y), ("dx", dx), ("dy_ref", dy_ref), ("dx_ref", dx_ref)):
            fx.add(f"t{t}.{name}", v)
        x64 = x.double()
        y64, dx64 = run(layer, x64, dy.double())
        _, dxr64 = run(layer, x64, dy_ref.double())
        p = f"t{t}."
        if log:
            # y = x - lse; dx = dy - exp(y) sum(dy), exp(y) with the absolute error of y
            my = logsoftmax_mag(x64)
            add_exact(fx, p + "y", y64, my)
            for name, g, v in (("dx", dy, dx64), ("dx_ref", dy_ref, dxr64)):
                g = g.double().abs()
                add_exact(fx, p + name, v, g + torch.exp(y64) * g.sum(dim=1, keepdim=True) * (1.0 + my))
        else:
            # y = e / sum(e): relative errors only; dx = y (dy - <dy, y>)
            add_exact(fx, p + "y", y64)
            for name, g, v in (("dx", dy, dx64), ("dx_ref", dy_ref, dxr64)):
                g = g.double().abs()
                add_exact(fx, p + name, v, y64 * (g + (g * y64).sum(dim=1, keepdim=True)))


def gen_activation(fx, kind):
    for t in range(TRIALS):
        B, n = randint(2, 9), randint(3, 9)
        p = f"t{t}."
        if kind == "relu":
            layer = torch.nn.ReLU()
        elif kind == "leaky_relu":
            slope = float(uniform((1,), 0.01, 0.05)[0])
            layer = torch.nn.LeakyReLU(slope)
            fx.add(p + "a", torch.tensor([slope]))
        elif kind == "elu":
            alpha = float(uniform((1,), 0.0, 2.0)[0])
            layer = torch.nn.ELU(alpha)
            fx.add(p + "a", torch.tensor([alpha]))
        else:
            layer = torch.nn.Softplus()
        x, dy = uniform((B, n), -10, 10), uniform((B, n), -10, 10)
        if kind == "softplus":
            # a few elements beyond the threshold (20) exercise the linear branch
            x = x * 2.5
        y, dx = run(layer, x, dy)
        for name, v in (("x", x), ("dy", dy), ("y", y), ("dx", dx)):
            fx.add(p + name, v)
        # elementwise: a few roundings relative to the value, no sums
        y64, dx64 = run(layer, x.double(), dy.double())
        add_exact(fx, p + "y", y64)
        add_exact(fx, p + "dx", dx64)


def bn_mags(x, dy, rm0, rv0, alpha, gamma, beta, rm, rv):
    """Magnitudes of the BatchNorm quantities, float64, by first-order propagation through
    mean, variance (two-pass or one-pass E[x^2] - mean^2: both are covered), 1/sqrt and the
    normalisation. Returns a dict keyed like the fixture tensors."""
    B = x.shape[0]
    ax, ady = x.abs(), dy.abs()
    mu, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
    r = 1.0 / torch.sqrt(var + BN_EPS)
    xhat = (x - mu) * r
    msq = (x * x).mean(dim=0)
    # xhat = (x - mean) r: the subtraction's terms, and r's relative error from var's sum
    m_xhat = (ax + ax.mean(dim=0)) * r + xhat.abs() * (msq + BN_EPS) / (var + BN_EPS)
    g = gamma.abs() if gamma is not None else torch.ones_like(mu)
    b = beta.abs() if beta is not None else torch.zeros_like(mu)
    m = {}
    m["y"] = g * m_xhat + b
    # dx = g r (dy - mean(dy) - xhat mean(dy xhat)), xhat with its own error
    m["dx"] = g * r * (ady + ady.mean(dim=0) + m_xhat * (ady * m_xhat).mean(dim=0))
    m["rm"] = alpha * rm0.abs() + (1.0 - alpha) * ax.mean(dim=0)
    m["rv"] = alpha * rv0.abs() + (1.0 - alpha) * msq * B / (B - 1)
    m["dgamma"] = (ady * m_xhat).sum(dim=0)
    m["dbeta"] = ady.sum(dim=0)
    # evaluate: xhat = (x - rm) / sqrt(rv + eps) with the moving statistics just updated
    # (their own rounding errors, m["rm"], m["rv"], carried along)
    re = 1.0 / torch.sqrt(rv + BN_EPS)
    xe = (x - rm) * re
    rel = 1.0 + m["rv"] / (rv + BN_EPS)
    m_xe = (ax + rm.abs() + m["rm"]) * re + xe.abs() * rel
    m["y_eval"] = g * m_xe + b
    m["dx_eval"] = ady * g * re * rel
    m["dgamma_eval"] = (ady * m_xe).sum(dim=0)
    m["dbeta_eval"] = ady.sum(dim=0)
    return m


def gen_batchnorm(fx, affine):
    """BatchNormalization(alpha) == BatchNorm1d(eps, momentum=1-alpha, affine=False);
    Sequential(BatchNormalization, Scaling) == BatchNorm1d(affine=True)."""
    for t in range(TRIALS):
        B, n = randint(4, 16), randint(3, 12)
        alpha = float(uniform((1,), 0.5, 0.99)[0])
        layer = torch.nn.BatchNorm1d(n, eps=BN_EPS, momentum=1.0 - alpha, affine=affine)
        layer.running_mean.copy_(uniform((n,), -1, 1))
        layer.running_var.copy_(uniform((n,), 0.5, 2))
        p = f"t{t}."
        fx.add(p + "alpha", torch.tensor([alpha]))
        fx.add(p + "rm0", layer.running_mean)
        fx.add(p + "rv0", layer.running_var)
        if affine:
            with torch.no_grad():
                layer.weight.copy_(uniform((n,), 0.5, 2))
                layer.bias.copy_(uniform((n,), -1, 1))
            fx.add(p + "gamma", layer.weight)
            fx.add(p + "beta", layer.bias)
        x, dy = uniform((B, n), -5, 5), uniform((B, n), -5, 5)
        l64 = copy.deepcopy(layer).double()   # before the training pass moves the statistics
        rm0, rv0 = l64.running_mean.clone(), l64.running_var.clone()
        ref = {}
        for lay, xx, gg, out in ((layer, x, dy, None), (l64, x.double(), dy.double(), ref)):
            lay.train()
            y, dx = run(lay, xx, gg)
            res = {"y": y, "dx": dx, "rm": lay.running_mean.clone(), "rv": lay.running_var.clone()}
            if affine:
                res["dgamma"], res["dbeta"] = lay.weight.grad.clone(), lay.bias.grad.clone()
                lay.weight.grad = None
                lay.bias.grad = None
            lay.eval()
            res["y_eval"], res["dx_eval"] = run(lay, xx, gg)
            if affine:
                res["dgamma_eval"], res["dbeta_eval"] = lay.weight.grad.clone(), lay.bias.grad.clone()
            if out is None:
                for name, v in (("x", x), ("dy", dy), ("y", res["y"]), ("dx", res["dx"]),
                                ("rm", res["rm"]), ("rv", res["rv"])):
                    fx.add(p + name, v)
                if affine:
                    fx.add(p + "dgamma", res["dgamma"])
                    fx.add(p + "dbeta", res["dbeta"])
                fx.add(p + "y_eval", res["y_eval"])
                fx.add(p + "dx_eval", res["dx_eval"])
                if affine:
                    fx.add(p + "dgamma_eval", res["dgamma_eval"])
                    fx.add(p + "dbeta_eval", res["dbeta_eval"])
            else:
                out.update(res)
        a64 = torch.tensor(alpha, dtype=torch.float64)
        mags = bn_mags(x.double(), dy.double(), rm0, rv0, a64,
                       l64.weight.detach() if affine else None, l64.bias.detach() if affine else None,
                       ref["rm"], ref["rv"])
        names = ["y", "dx", "rm", "rv", "y_eval", "dx_eval"]
        if affine:
            names += ["dgamma", "dbeta", "dgamma_eval", "dbeta_eval"]
        for name in names:
            add_exact(fx, p + name, ref[name], mags[name])


def gen_nll(fx, unstable):
    """NLLCriterion takes log-probabilities; NLLCriterionUnstable takes probabilities and
    is NLLLoss(log(clamp(p, eps, 1 - eps))). Mean reduction (shardnet: scale = 1/B)."""
    for t in range(TRIALS):
        B, C = randint(2, 9), randint(3, 9)
        logits = uniform((B, C), -10, 10)
        target = torch.randint(0, C, (B,))
        p = f"t{t}."
        if unstable:
            prob = torch.softmax(logits, dim=1).requires_grad_(True)
            loss = torch.nn.NLLLoss()(torch.log(prob.clamp(NLL_UNSTABLE_EPS, 1 - NLL_UNSTABLE_EPS)), target)
            loss.backward()
            fx.add(p + "p", prob)
            fx.add(p + "target", target)
            fx.add(p + "loss", loss.reshape(1))
            fx.add(p + "dp", prob.grad)
            # float64 from the same float32 probabilities, clipped to the float32 bounds that
            # the float32 computation uses (1 - 1e-15 is 1 in float32)
            lo, hi = f32(NLL_UNSTABLE_EPS), f32(1 - NLL_UNSTABLE_EPS)
            p64 = prob.detach().double().requires_grad_(True)
            lp64 = torch.log(p64.clamp(lo, hi))
            loss64 = torch.nn.NLLLoss()(lp64, target)
            loss64.backward()
            add_exact(fx, p + "loss", loss64.reshape(1),
                      lp64.detach().gather(1, target[:, None]).abs().mean().reshape(1))
            add_exact(fx, p + "dp", p64.grad)
        else:
            z = logits.clone().requires_grad_(True)
            logp = torch.log_softmax(z, dim=1)
            logp.retain_grad()
            loss = torch.nn.NLLLoss()(logp, target)
            loss.backward()
            fx.add(p + "logits", logits)
            fx.add(p + "logp", logp)
            fx.add(p + "target", target)
            fx.add(p + "loss", loss.reshape(1))
            fx.add(p + "dlogp", logp.grad)
            fx.add(p + "dlogits", z.grad)
            # loss and dlogp from the same float32 log-probabilities; LogSoftMax on the logits
            lp64 = logp.detach().double().requires_grad_(True)
            loss64 = torch.nn.NLLLoss()(lp64, target)
            loss64.backward()
            add_exact(fx, p + "loss", loss64.reshape(1),
                      lp64.detach().gather(1, target[:, None]).abs().mean().reshape(1))
            add_exact(fx, p + "dlogp", lp64.grad)
            z64 = logits.double().requires_grad_(True)
            y64 = torch.log_softmax(z64, dim=1)
            torch.nn.NLLLoss()(y64, target).backward()
            my = logsoftmax_mag(logits.double())
            add_exact(fx, p + "logp", y64.detach(), my)
            g = lp64.grad.abs()
            add_exact(fx, p + "dlogits", z64.grad,
                      g + torch.exp(y64.detach()) * g.sum(dim=1, keepdim=True) * (1.0 + my))


# B, C, H, W, OC, K, stride, pad
CONV_CASES = [
    (3, 2, 5, 5, 3, 3, 1, 0),
    (3, 3, 7, 9, 4, 3, 2, 1),      # stride 2, padding 1, odd and unequal sizes
    (2, 2, 5, 5, 3, 1, 1, 0),      # 1x1 kernel
    (4, 3, 8, 6, 5, 5, 1, 2),      # 5x5, padding 2
    (1, 4, 9, 7, 2, 3, 3, 0),      # stride 3 leaves rows unused
    (2, 2, 6, 6, 3, 2, 2, 1),      # even kernel with padding
    (2, 3, 11, 11, 4, 4, 2, 1),
    (1, 1, 28, 28, 16, 3, 1, 0),   # MNIST ConvNet conv1 (one sample: the fixtures stay small)
    (1, 16, 26, 26, 32, 3, 1, 0),  # MNIST ConvNet conv2
]

# Fewer output positions than output channels: the batched-columns plan of conv2d.c (ResNet's
# deep layers: 3x3 padded, 1x1, 1x1 stride 2 downsample).
CONV_BATCHED_CASES = [
    (2, 6, 5, 5, 24, 3, 2, 1),
    (3, 8, 4, 4, 24, 3, 1, 1),
    (2, 16, 3, 3, 32, 1, 1, 0),
    (2, 12, 7, 7, 20, 1, 2, 0),
    (1, 32, 2, 2, 48, 3, 1, 1),
]

# 3x3, stride 1, padding 1: the Winograd F(2x2, 3x3) option of conv2d.c (ResNet's blocks):
# whole and partial 2x2 output blocks, tiles crossing rows and samples, chunks of many tiles.
CONV_WINOGRAD_CASES = [
    (2, 3, 5, 5, 4, 3, 1, 1),      # odd size: the last tile row and column are half used
    (3, 4, 7, 9, 6, 3, 1, 1),
    (2, 2, 1, 1, 3, 3, 1, 1),      # one pixel: a single, mostly padded tile
    (2, 5, 20, 34, 3, 3, 1, 1),    # 17 tiles a row: runs of 8 inside a row and across rows; 340 tiles
                                   # make two chunks, the first across samples
    (3, 16, 16, 16, 24, 3, 1, 1),  # 8 tiles a row: every run of 8 a whole row, padded at both ends
    (2, 40, 4, 4, 48, 3, 1, 1),    # fewer positions than channels: Winograd in place of the batched plan
]

# B, C, H, W, K, stride
POOL_CASES = [
    (2, 3, 4, 4, 2, 2),
    (3, 2, 7, 5, 2, 2),            # odd sizes: the last row/column is dropped
    (2, 2, 7, 7, 3, 2),            # overlapping windows
    (2, 3, 6, 5, 3, 1),            # stride 1: most inputs in several windows
    (1, 4, 9, 9, 3, 3),
    (2, 2, 5, 8, 1, 1),            # identity
    (1, 32, 24, 24, 2, 2),         # MNIST ConvNet pool
]

# B, C, H, W, K, stride, pad: implicit -inf padding (windows clipped at the border)
POOL_PAD_CASES = [
    (2, 3, 8, 8, 3, 2, 1),         # ResNet's stem pool, even size
    (2, 2, 7, 9, 3, 2, 1),         # odd sizes
    (1, 2, 5, 5, 3, 1, 1),         # stride 1: every border window is clipped
    (2, 2, 6, 7, 2, 2, 1),         # even kernel
    (1, 3, 9, 6, 5, 3, 2),         # 5x5, padding 2
    (2, 4, 16, 16, 3, 2, 1),
]


def gen_conv2d(fx, cases=CONV_CASES):
    fx.add_int("n_cases", len(cases))
    for i, (B, C, H, W, OC, K, S, P) in enumerate(cases):
        layer = torch.nn.Conv2d(C, OC, K, stride=S, padding=P)
        x = uniform((B, C, H, W), -10, 10)
        OH, OW = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
        dy = uniform((B, OC, OH, OW), -10, 10)
        l64, la = copy.deepcopy(layer).double(), abs_twin(layer)
        y, dx = run(layer, x, dy)
        p = f"c{i}."
        fx.add(p + "geom", torch.tensor([B, C, H, W, OC, K, S, P], dtype=torch.int32))
        for name, v in (("x", x), ("w", layer.weight), ("b", layer.bias), ("dy", dy), ("y", y),
                        ("dx", dx), ("dw", layer.weight.grad), ("db", layer.bias.grad)):
            fx.add(p + name, v)
        y64, dx64 = run(l64, x.double(), dy.double())
        ya, dxa = run(la, x.double().abs(), dy.double().abs())
        for name, v, m in (("y", y64, ya), ("dx", dx64, dxa), ("dw", l64.weight.grad, la.weight.grad),
                           ("db", l64.bias.grad, la.bias.grad)):
            add_exact(fx, p + name, v, m)


def gen_maxpool2d(fx, padded=False):
    cases = POOL_PAD_CASES if padded else [c + (0,) for c in POOL_CASES]
    fx.add_int("n_cases", len(cases))
    for i, (B, C, H, W, K, S, P) in enumerate(cases):
        layer = torch.nn.MaxPool2d(K, stride=S, padding=P)
        x = uniform((B, C, H, W), -10, 10)
        OH, OW = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
        dy = uniform((B, C, OH, OW), -10, 10)
        y, dx = run(layer, x, dy)
        p = f"c{i}."
        geom = [B, C, H, W, K, S] + ([P] if padded else [])
        fx.add(p + "geom", torch.tensor(geom, dtype=torch.int32))
        for name, v in (("x", x), ("dy", dy), ("y", y), ("dx", dx)):
            fx.add(p + name, v)
        # y is a copy; dx sums the gradients of the windows an input is the maximum of
        y64, dx64 = run(layer, x.double(), dy.double())
        _, dxa = run(layer, x.double(), dy.double().abs())
        add_exact(fx, p + "y", y64)
        add_exact(fx, p + "dx", dx64, dxa)


# lr, rho, eps, weight_decay; the first is the MNIST recipe's
ADADELTA_CASES = [(0.5, 0.9, 1e-6, 0.0), (1.0, 0.95, 1e-6, 0.01), (0.1, 0.5, 1e-4, 0.1)]
ADADELTA_STEPS, ADADELTA_N = 6, 257


# lr, beta1, beta2, eps, weight_decay; the first is torch's default
ADAM_CASES = [(1e-3, 0.9, 0.999, 1e-8, 0.0), (0.01, 0.8, 0.99, 1e-6, 0.01), (0.1, 0.5, 0.9, 1e-4, 0.1)]


def gen_optimizer(fx, kind):
    cases = ADADELTA_CASES if kind == "adadelta" else ADAM_CASES

    def make(w, hp):
        if kind == "adadelta":
            lr, rho, eps, wd = hp
            return torch.optim.Adadelta([w], lr=lr, rho=rho, eps=eps, weight_decay=wd, foreach=False)
        lr, b1, b2, eps, wd = hp
        return torch.optim.Adam([w], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)

    fx.add_int("n_cases", len(cases))
    for i, hp in enumerate(cases):
        w = torch.nn.Parameter(uniform((ADADELTA_N,), -1, 1))
        grads = uniform((ADADELTA_STEPS, ADADELTA_N), -1, 1)
        grads[:, :8] *= 1e-4                   # tiny gradients: eps dominates
        grads[:, 8:16] *= 100.0                # large ones
        p = f"c{i}."
        fx.add(p + "hp", torch.tensor(hp, dtype=torch.float32))
        fx.add(p + "p0", w)
        p0 = w.detach().clone()
        fx.add(p + "grads", grads)
        opt = make(w, hp)
        after = []
        for s in range(ADADELTA_STEPS):
            w.grad = grads[s].clone()
            opt.step()
            after.append(w.detach().clone())
        fx.add(p + "p_steps", torch.stack(after))
        # float64 with the float32 hyper-parameters shardnet is given; magnitude of p_s =
        # p0 - sum of the updates: |p0| + sum of |update|
        w64 = torch.nn.Parameter(p0.double())
        opt = make(w64, tuple(f32(v) for v in hp))
        after, mags = [], []
        mag = w64.detach().abs().clone()
        for s in range(ADADELTA_STEPS):
            prev = w64.detach().clone()
            w64.grad = grads[s].double().clone()
            opt.step()
            mag = mag + (w64.detach() - prev).abs()
            after.append(w64.detach().clone())
            mags.append(mag.clone())
        add_exact(fx, p + "p_steps", torch.stack(after), torch.stack(mags))


GENERATORS = [
    ("linear.bin", 101, gen_linear),
    ("softmax.bin", 102, lambda fx: gen_softmax(fx, log=False)),
    ("log_softmax.bin", 103, lambda fx: gen_softmax(fx, log=True)),
    ("batchnorm.bin", 104, lambda fx: gen_batchnorm(fx, affine=False)),
    ("bn_scaling.bin", 105, lambda fx: gen_batchnorm(fx, affine=True)),
    ("relu.bin", 106, lambda fx: gen_activation(fx, "relu")),
    ("leaky_relu.bin", 107, lambda fx: gen_activation(fx, "leaky_relu")),
    ("elu.bin", 108, lambda fx: gen_activation(fx, "elu")),
    ("softplus.bin", 109, lambda fx: gen_activation(fx, "softplus")),
    ("nll_unstable.bin", 110, lambda fx: gen_nll(fx, unstable=True)),
    ("nll.bin", 111, lambda fx: gen_nll(fx, unstable=False)),
    ("conv2d.bin", 112, gen_conv2d),
    ("maxpool2d.bin", 113, gen_maxpool2d),
    ("adadelta.bin", 114, lambda fx: gen_optimizer(fx, "adadelta")),
    ("adam.bin", 115, lambda fx: gen_optimizer(fx, "adam")),
    ("maxpool2d_pad.bin", 116, lambda fx: gen_maxpool2d(fx, padded=True)),
    ("conv2d_batched.bin", 117, lambda fx: gen_conv2d(fx, CONV_BATCHED_CASES)),
    ("conv2d_winograd.bin", 118, lambda fx: gen_conv2d(fx, CONV_WINOGRAD_CASES)),
]


def main():
    ap = argparse.ArgumentParser(description="Write the PyTorch reference fixtures of the layer parity tests.")
    ap.add_argument("outdir", help="folder for the .bin files (tests/fixtures)")
    ap.add_argument("--only", metavar="FILE", help="write just this fixture (e.g. linear.bin)")
    args = ap.parse_args()
    if not os.path.isdir(args.outdir):
        sys.exit(f"gen_fixtures.py: {args.outdir}: not a directory")
    torch.set_num_threads(1)
    done = 0
    for fname, seed, gen in GENERATORS:
        if args.only and args.only != fname:
            continue
        torch.manual_seed(seed)
        fx = Fixture()
        if fname not in ("conv2d.bin", "maxpool2d.bin", "adadelta.bin", "adam.bin", "maxpool2d_pad.bin",
                         "conv2d_batched.bin", "conv2d_winograd.bin"):
            fx.add_int("n_trials", TRIALS)
        gen(fx)
        fx.write(os.path.join(args.outdir, fname))
        done += 1
    if done == 0:
        sys.exit(f"gen_fixtures.py: no fixture named {args.only}")


if __name__ == "__main__":
    main()
