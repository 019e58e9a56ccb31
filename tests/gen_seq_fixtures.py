"""PyTorch reference fixtures for the sequence and encoder layers (tests/test_seq_*.c).

Run from the repository root with Debian's torch:
    /usr/bin/python3 tests/gen_seq_fixtures.py
Writes tests/fixtures/seq_*.snfx (tests/fixture_io.py format). Everything is seeded and
torch runs single-threaded, so regenerating on the same CPU reproduces the committed bytes; on
another CPU the BLAS picks other kernels and the LSTM and residual-block fixtures come out
different in the last bits (on the Zen 3 machine, 295 of seq_lstm_l1's 4,419 bytes), all within
the tests' tolerances. Regenerate only what changed: restore the others from git.

Fixtures:
  seq_embedding     Embedding(11, 5), ids (3, 4) with repeats: y, dweight
  seq_lstm_<case>   nn.LSTM(F, H, L, batch_first) on pack_padded_sequence(enforce_sorted=False)
                    with unsorted lengths; loss = sum(y gy) + sum(h_n ghn) + sum(c_n gcn);
                    y, h_n, c_n, dx, every parameter gradient, dh0/dc0 when h0/c0 are given
  seq_bn2d, seq_bn1d  BatchNorm2d / BatchNorm1d (affine, momentum 0.1): a training
                    forward+backward, then an evaluate forward+backward on new data
  seq_resblock      conv-bn-relu-conv-bn + 1x1 conv shortcut, ReLU, global average pool
  seq_masked_nll    nll_loss(ignore_index=0), nll_loss and cross_entropy on packed targets
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import Fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def embedding():
    torch.manual_seed(1)
    emb = nn.Embedding(11, 5)
    ids = torch.tensor([[3, 0, 3, 10], [7, 7, 7, 1], [0, 2, 3, 9]])
    y = emb(ids)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    fx = Fixture()
    fx.add_int("vocab", 11)
    fx.add_int("dim", 5)
    fx.add("weight", emb.weight)
    fx.add("ids", ids.to(torch.int32))
    fx.add("y", y)
    fx.add("gy", gy)
    fx.add("dweight", emb.weight.grad)
    fx.write(os.path.join(OUT, "seq_embedding.snfx"))


def lstm_case(name, seed, B, T, Fi, H, L, lengths, given_state):
    torch.manual_seed(seed)
    lstm = nn.LSTM(Fi, H, L, batch_first=True)
    x = torch.randn(B, T, Fi, requires_grad=True)
    h0 = (0.5 * torch.randn(L, B, H)).requires_grad_() if given_state else None
    c0 = (0.5 * torch.randn(L, B, H)).requires_grad_() if given_state else None
    gy = torch.randn(B, T, H)        # non-zero at padding too: those entries must be ignored
    ghn = torch.randn(L, B, H)
    gcn = torch.randn(L, B, H)
    lens = torch.tensor(lengths)
    packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    out, (hn, cn) = lstm(packed, (h0, c0)) if given_state else lstm(packed)
    y, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    loss = (y * gy).sum() + (hn * ghn).sum() + (cn * gcn).sum()
    loss.backward()
    fx = Fixture()
    for k, v in (("B", B), ("T", T), ("F", Fi), ("H", H), ("L", L), ("given_state", int(given_state))):
        fx.add_int(k, v)
    fx.add("lengths", lens.to(torch.int32))
    fx.add("x", x)
    if given_state:
        fx.add("h0", h0)
        fx.add("c0", c0)
    fx.add("gy", gy)
    fx.add("ghn", ghn)
    fx.add("gcn", gcn)
    for pname, p in lstm.named_parameters():
        fx.add(pname, p)
    fx.add("y", y)
    fx.add("hn", hn)
    fx.add("cn", cn)
    fx.add("dx", x.grad)
    for pname, p in lstm.named_parameters():
        fx.add("d" + pname, p.grad)
    if given_state:
        fx.add("dh0", h0.grad)
        fx.add("dc0", c0.grad)
    fx.write(os.path.join(OUT, f"seq_lstm_{name}.snfx"))


def batchnorm(name, bn, shape, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        bn.weight.copy_(1.0 + 0.5 * torch.randn_like(bn.weight))
        bn.bias.copy_(0.5 * torch.randn_like(bn.bias))
    fx = Fixture()
    fx.add("weight", bn.weight)
    fx.add("bias", bn.bias)
    for mode in ("train", "eval"):
        bn.train(mode == "train")
        bn.zero_grad()
        x = (2.0 * torch.randn(*shape) + 1.0).requires_grad_()
        gy = torch.randn(*shape)
        y = bn(x)
        (y * gy).sum().backward()
        fx.add(f"{mode}_x", x)
        fx.add(f"{mode}_gy", gy)
        fx.add(f"{mode}_y", y)
        fx.add(f"{mode}_dx", x.grad)
        fx.add(f"{mode}_dweight", bn.weight.grad.clone())  # zero_grad reuses the tensor
        fx.add(f"{mode}_dbias", bn.bias.grad.clone())
        fx.add(f"{mode}_running_mean", bn.running_mean.clone())
        fx.add(f"{mode}_running_var", bn.running_var.clone())
    fx.write(os.path.join(OUT, f"seq_{name}.snfx"))


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.sc = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x):
        body = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        y = F.relu(body + self.sc(x))
        return y.mean(dim=(2, 3))


def resblock():
    torch.manual_seed(5)
    blk = ResBlock(3, 4)
    with torch.no_grad():
        for bn in (blk.bn1, blk.bn2):
            bn.weight.copy_(1.0 + 0.3 * torch.randn_like(bn.weight))
            bn.bias.copy_(0.3 * torch.randn_like(bn.bias))
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    y = blk(x)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    fx = Fixture()
    fx.add("x", x)
    fx.add("gy", gy)
    for pname, p in blk.named_parameters():
        fx.add(pname, p)
    fx.add("y", y)
    fx.add("dx", x.grad)
    for pname, p in blk.named_parameters():
        fx.add("d" + pname, p.grad)
    fx.write(os.path.join(OUT, "seq_resblock.snfx"))


def masked_nll():
    torch.manual_seed(7)
    B, T, V = 4, 6, 9
    lengths = torch.tensor([4, 6, 1, 3])
    logp = F.log_softmax(torch.randn(B, T, V), dim=2).requires_grad_()
    target = torch.randint(1, V, (B, T))
    for b in range(B):
        target[b, lengths[b]:] = 0     # <pad>
    loss_i = F.nll_loss(logp.reshape(-1, V), target.reshape(-1), ignore_index=0)
    (grad_i,) = torch.autograd.grad(loss_i, logp)
    lp = pack_padded_sequence(logp, lengths, batch_first=True, enforce_sorted=False).data
    tp = pack_padded_sequence(target, lengths, batch_first=True, enforce_sorted=False).data
    loss_p = F.nll_loss(lp, tp)
    (grad_p,) = torch.autograd.grad(loss_p, logp)
    # cross-entropy on the packed scores: the same value (log_softmax of log-probabilities
    # is the identity), though not the same gradient w.r.t. logp
    loss_ce = F.cross_entropy(lp, tp)
    fx = Fixture()
    fx.add("logp", logp)
    fx.add("target", target.to(torch.int32))
    fx.add("lengths", lengths.to(torch.int32))
    fx.add("loss_ignore", np.array([loss_i.item()]), dtype=np.float64)
    fx.add("grad_ignore", grad_i)
    fx.add("loss_packed", np.array([loss_p.item()]), dtype=np.float64)
    fx.add("grad_packed", grad_p)
    fx.add("loss_packed_ce", np.array([loss_ce.item()]), dtype=np.float64)
    fx.write(os.path.join(OUT, "seq_masked_nll.snfx"))


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    embedding()
    lstm_case("l1", 11, B=3, T=5, Fi=4, H=6, L=1, lengths=[3, 5, 1], given_state=False)
    lstm_case("l1_state", 12, B=2, T=3, Fi=3, H=4, L=1, lengths=[3, 3], given_state=True)
    lstm_case("l2", 13, B=4, T=6, Fi=5, H=7, L=2, lengths=[2, 6, 4, 3], given_state=True)
    lstm_case("l2_wide", 14, B=5, T=7, Fi=8, H=16, L=2, lengths=[7, 1, 3, 7, 5], given_state=False)
    # H filling several packed panels per gate exactly (16 columns wide, 32 with AVX-512;
    # src/kernels/gemm_packed.c), which the threads share
    lstm_case("l1_units", 15, B=5, T=6, Fi=8, H=64, L=1, lengths=[6, 2, 4, 6, 1], given_state=True)
    batchnorm("bn2d", nn.BatchNorm2d(3, momentum=0.1), (4, 3, 4, 5), 21)
    batchnorm("bn1d", nn.BatchNorm1d(5, momentum=0.1), (6, 5), 22)
    resblock()
    masked_nll()


if __name__ == "__main__":
    main()
