#!/usr/bin/python3
"""Writes the PyTorch reference fixtures of the layer library's parity tests.

    /usr/bin/python3 tests/gen_fixtures.py tests/fixtures

For each layer, 100 random trials in the Torch7-protocol style of the reference suite
(modules.py tests): small random sizes, a fresh layer with PyTorch's random parameters
(stored, so shardnet computes from the same weights), input uniform in [-10, 10]
([-5, 5] where the reference suite uses it), a random output gradient; PyTorch's output,
input gradient and parameter gradients are stored next to them. Conv2d and MaxPool2d get a
handful of geometries (stride, padding, odd sizes, the MNIST ConvNet shapes), Adadelta a
few steps on fixed gradients.

The output must be byte-for-byte reproducible: every file seeds torch itself, torch runs on
one thread, and the writer (fixture_io.py) emits tensors in insertion order. It must not
use any other random source (numpy, random) and must not change a file's content unless
the test it feeds changes too. Needs Debian's python3-torch (1.13) under /usr/bin/python3;
the tests themselves read only the committed files.
"""
import argparse
import os
import sys

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
        y, dx = run(layer, x, dy)
        p = f"t{t}."
        for name, v in (("x", x), ("w", layer.weight), ("b", layer.bias), ("dy", dy), ("y", y),
                        ("dx", dx), ("dw", layer.weight.grad), ("db", layer.bias.grad)):
            fx.add(p + name, v)


def gen_softmax(fx, log):
    for t in range(TRIALS):
        B, n = randint(2, 9), randint(3, 9)
        layer = torch.nn.LogSoftmax(dim=1) if log else torch.nn.Softmax(dim=1)
        x, dy, dy_ref = uniform((B, n), -10, 10), uniform((B, n), -10, 10), softmax_dy((B, n))
        y, dx = run(layer, x, dy)
        _, dx_ref = run(layer, x, dy_ref)
        for name, v in (("x", x), ("dy", dy), ("y", y), ("dx", dx), ("dy_ref", dy_ref), ("dx_ref", dx_ref)):
            fx.add(f"t{t}.{name}", v)


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
        layer.train()
        y, dx = run(layer, x, dy)
        for name, v in (("x", x), ("dy", dy), ("y", y), ("dx", dx),
                        ("rm", layer.running_mean), ("rv", layer.running_var)):
            fx.add(p + name, v)
        if affine:
            fx.add(p + "dgamma", layer.weight.grad)
            fx.add(p + "dbeta", layer.bias.grad)
            layer.weight.grad = None
            layer.bias.grad = None
        layer.eval()
        y_eval, dx_eval = run(layer, x, dy)
        fx.add(p + "y_eval", y_eval)
        fx.add(p + "dx_eval", dx_eval)
        if affine:
            fx.add(p + "dgamma_eval", layer.weight.grad)
            fx.add(p + "dbeta_eval", layer.bias.grad)


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


# B, C, H, W, OC, K, stride, pad
CONV_CASES = [
    (3, 2, 5, 5, 3, 3, 1, 0),
    (3, 3, 7, 9, 4, 3, 2, 1),      # stride 2, padding 1, odd and unequal sizes
    (2, 2, 5, 5, 3, 1, 1, 0),      # 1x1 kernel
    (4, 3, 8, 6, 5, 5, 1, 2),      # 5x5, padding 2
    (1, 4, 9, 7, 2, 3, 3, 0),      # stride 3 leaves rows unused
    (2, 2, 6, 6, 3, 2, 2, 1),      # even kernel with padding
    (2, 3, 11, 11, 4, 4, 2, 1),
    (2, 1, 28, 28, 16, 3, 1, 0),   # MNIST ConvNet conv1
    (2, 16, 26, 26, 32, 3, 1, 0),  # MNIST ConvNet conv2
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


def gen_conv2d(fx):
    fx.add_int("n_cases", len(CONV_CASES))
    for i, (B, C, H, W, OC, K, S, P) in enumerate(CONV_CASES):
        layer = torch.nn.Conv2d(C, OC, K, stride=S, padding=P)
        x = uniform((B, C, H, W), -10, 10)
        OH, OW = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
        dy = uniform((B, OC, OH, OW), -10, 10)
        y, dx = run(layer, x, dy)
        p = f"c{i}."
        fx.add(p + "geom", torch.tensor([B, C, H, W, OC, K, S, P], dtype=torch.int32))
        for name, v in (("x", x), ("w", layer.weight), ("b", layer.bias), ("dy", dy), ("y", y),
                        ("dx", dx), ("dw", layer.weight.grad), ("db", layer.bias.grad)):
            fx.add(p + name, v)


def gen_maxpool2d(fx):
    fx.add_int("n_cases", len(POOL_CASES))
    for i, (B, C, H, W, K, S) in enumerate(POOL_CASES):
        layer = torch.nn.MaxPool2d(K, stride=S)
        x = uniform((B, C, H, W), -10, 10)
        OH, OW = (H - K) // S + 1, (W - K) // S + 1
        dy = uniform((B, C, OH, OW), -10, 10)
        y, dx = run(layer, x, dy)
        p = f"c{i}."
        fx.add(p + "geom", torch.tensor([B, C, H, W, K, S], dtype=torch.int32))
        for name, v in (("x", x), ("dy", dy), ("y", y), ("dx", dx)):
            fx.add(p + name, v)


# lr, rho, eps, weight_decay; the first is the MNIST recipe's
ADADELTA_CASES = [(0.5, 0.9, 1e-6, 0.0), (1.0, 0.95, 1e-6, 0.01), (0.1, 0.5, 1e-4, 0.1)]
ADADELTA_STEPS, ADADELTA_N = 6, 257


def gen_adadelta(fx):
    fx.add_int("n_cases", len(ADADELTA_CASES))
    for i, (lr, rho, eps, wd) in enumerate(ADADELTA_CASES):
        w = torch.nn.Parameter(uniform((ADADELTA_N,), -1, 1))
        grads = uniform((ADADELTA_STEPS, ADADELTA_N), -1, 1)
        grads[:, :8] *= 1e-4                   # tiny gradients: eps dominates
        grads[:, 8:16] *= 100.0                # large ones
        p = f"c{i}."
        fx.add(p + "hp", torch.tensor([lr, rho, eps, wd], dtype=torch.float32))
        fx.add(p + "p0", w)
        fx.add(p + "grads", grads)
        opt = torch.optim.Adadelta([w], lr=lr, rho=rho, eps=eps, weight_decay=wd, foreach=False)
        after = []
        for s in range(ADADELTA_STEPS):
            w.grad = grads[s].clone()
            opt.step()
            after.append(w.detach().clone())
        fx.add(p + "p_steps", torch.stack(after))


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
    ("adadelta.bin", 114, gen_adadelta),
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
        if fname not in ("conv2d.bin", "maxpool2d.bin", "adadelta.bin"):
            fx.add_int("n_trials", TRIALS)
        gen(fx)
        fx.write(os.path.join(args.outdir, fname))
        done += 1
    if done == 0:
        sys.exit(f"gen_fixtures.py: no fixture named {args.only}")


if __name__ == "__main__":
    main()
