"""PyTorch reference fixture for the captioning model (tests/test_caption_model.c).

Run from the repository root with Debian's torch:
    /usr/bin/python3 tests/gen_caption_fixtures.py
Writes tests/fixtures/caption_step.snfx (tests/fixture_io.py format). Everything is
seeded and torch runs single-threaded, so regenerating reproduces the committed bytes.

The model is the reference's own EncoderCNN('small') and DecoderRNN, imported from
/work/shared/bench/torch_caption.py (or $SN_TORCH_CAPTION); that script imports
torchvision at the top, which only its ResNet encoders use, so an empty stand-in module
is installed when torchvision is missing.

One training step as the reference's loop runs it: rows sorted by length (its
make_captions), encoder + decoder in train mode, CrossEntropyLoss (mean) on the packed
targets, backward. Then greedy decoding (its DecoderRNN.sample, 20 tokens, encoder and
decoder in eval mode) and its ids_to_tokens on the unsorted rows.

Size: the fixed encoder has 388k conv weights, more than the fixture may hold twice
(values + gradients, < 500 KB). So the two largest tensors (encoder.body.body.6.weight,
encoder.body.body.9.weight) are not stored but filled by gen_values() below, which the
C test reproduces bit for bit (integer hash -> exactly representable floats), and their
gradients are stored for every STEP-th output channel ("d<name>", "dstep.<name>") plus
two full-tensor checks in double ("dproj.<name>": sum(g), sum(g r), sum(|g r|) for the
pseudo-random r = gen_values(salt + 100, 1)). Every other tensor is stored whole.

Contents: sizes (V, E, H, layers, crop, B, max_len, max_tokens); images (B,3,crop,crop)
unsorted; captions (B, max_len) unsorted, with 999 at the padding positions (the model
must not read them; PyTorch sees <pad>); lengths; "gen.<name>" = [salt, log2 bound] of
the generated tensors; every state_dict tensor (encoder.* / decoder.*, running stats
included, num_batches_tracked not) before the step; loss (mean, f64) and ntok; "d<name>"
every parameter gradient (of the mean loss); "after.<name>" the BatchNorm running
statistics after the step; greedy_raw (B, 20) sample() ids; greedy (B, 20) the captions
(0-padded) and greedy_len.
"""
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import Fixture  # noqa: E402

REF = os.environ.get("SN_TORCH_CAPTION", "/work/shared/bench/torch_caption.py")
sys.path.insert(0, os.path.dirname(REF))
try:
    import torchvision  # noqa: F401
except ImportError:
    sys.modules["torchvision"] = types.ModuleType("torchvision")
tc = __import__(os.path.splitext(os.path.basename(REF))[0])

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

V, E, H, CROP, B, MAX_LEN, MAX_TOKENS = 50, 16, 24, 32, 4, 8, 20
GENERATED = {"encoder.body.body.6.weight": (3, -5), "encoder.body.body.9.weight": (4, -5)}
STEP = {"encoder.body.body.6.weight": 8, "encoder.body.body.9.weight": 32}


def gen_values(salt, log2_bound, n):
    """n floats (u - 2^23) * 2^(log2_bound - 23), u = lowbias32(i + salt*0x9E3779B9) >> 8."""
    m = np.uint64(0xFFFFFFFF)
    x = (np.arange(n, dtype=np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B9)) & m
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & m
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & m
    x ^= x >> np.uint64(16)
    u = (x >> np.uint64(8)).astype(np.int64) - (1 << 23)
    return (u.astype(np.float64) * 2.0 ** (log2_bound - 23)).astype(np.float32)


def make_images(n):
    """Normalised-looking images whose channel means differ between samples (iid noise
    alone averages out in the global pool and gives nearly equal features)."""
    return torch.randn(n, 3, CROP, CROP) + torch.randn(n, 3, 1, 1)


def named_state(enc, dec):
    out = []
    for prefix, mod in (("encoder", enc), ("decoder", dec)):
        for k, v in mod.state_dict(keep_vars=True).items():
            if not k.endswith("num_batches_tracked"):
                out.append((f"{prefix}.{k}", v))
    return out


def case(fname, seed, layers, lengths, encoder_grads):
    torch.manual_seed(seed)
    enc = tc.EncoderCNN("small", E, False)
    dec = tc.DecoderRNN(E, H, V, layers)
    state = dict(named_state(enc, dec))
    with torch.no_grad():
        for name, (salt, lb) in GENERATED.items():
            t = state[name]
            t.copy_(torch.from_numpy(gen_values(salt, lb, t.numel())).view_as(t))
        # non-trivial batch-norm affine parameters
        for name, t in state.items():
            bn = ".bn." in name or any(name.startswith(f"encoder.body.body.{3 * k + 1}.") for k in range(4))
            if bn and name.endswith("weight"):
                t.uniform_(0.5, 1.5)
            elif bn and name.endswith("bias"):
                t.uniform_(-0.2, 0.2)
        # running statistics of a trained model: one pass over other images with
        # momentum 1 (random ones, 0/1, would make eval-mode features almost constant)
        bns = [m for m in enc.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.momentum = 1.0
        enc.train()
        enc(make_images(16))
        for m, mo in zip(bns, momenta):
            m.momentum = mo
        # a decoder whose greedy captions depend on the image and the previous token (at
        # the default initialisation every row repeats <start>): rows end at <end> after
        # 2..7 tokens and one row has a <start> to drop
        dec.linear.weight.mul_(5.0)
        dec.linear.bias.zero_()
        dec.linear.bias[tc.END] = 0.6
        for k in range(layers):
            getattr(dec.lstm, f"weight_ih_l{k}").mul_(4.0)
    images = make_images(B)
    g = torch.Generator().manual_seed(5)
    seqs = []
    for L in lengths:
        words = torch.randint(3, V, (L - 2,), generator=g).tolist()
        seqs.append([tc.START] + words + [tc.END])
    captions = np.full((B, MAX_LEN), 999, dtype=np.int32)
    for b, s in enumerate(seqs):
        captions[b, :len(s)] = s

    fx = Fixture()
    for k, v in (("V", V), ("E", E), ("H", H), ("layers", layers), ("crop", CROP), ("B", B),
                 ("max_len", MAX_LEN), ("max_tokens", MAX_TOKENS)):
        fx.add_int(k, v)
    fx.add_int("encoder_grads", int(encoder_grads))
    fx.add("images", images)
    fx.add("captions", captions)
    fx.add("lengths", np.array(lengths, dtype=np.int32))
    for name, (salt, lb) in GENERATED.items():
        fx.add("gen." + name, np.array([salt, lb], dtype=np.int32))
    for name, t in state.items():
        if name not in GENERATED:
            fx.add(name, t)

    # one training step, exactly as the reference's loop
    enc.train()
    dec.train()
    order, cap, lengths = tc.make_captions(seqs)
    x = images[order]
    feats = enc(x)
    out = dec(feats, cap, lengths)
    tgt = tc.pack_padded_sequence(cap, lengths, batch_first=True)[0]
    loss = torch.nn.CrossEntropyLoss()(out, tgt)
    loss.backward()
    fx.add("loss", np.array([loss.item()]), dtype=np.float64)
    fx.add_int("ntok", tgt.numel())
    for name, t in state.items():
        if t.grad is None or (not encoder_grads and name.startswith("encoder.")):
            continue
        gr = t.grad.detach().numpy()
        if name in GENERATED:
            salt, _ = GENERATED[name]
            g64 = gr.astype(np.float64).ravel()
            r = gen_values(salt + 100, 0, g64.size).astype(np.float64)
            fx.add("d" + name, gr[::STEP[name]])
            fx.add_int("dstep." + name, STEP[name])
            fx.add("dproj." + name, np.array([g64.sum(), (g64 * r).sum(), np.abs(g64 * r).sum()]),
                   dtype=np.float64)
        else:
            fx.add("d" + name, gr)
    for name, t in state.items():
        if "running_" in name:
            fx.add("after." + name, t)

    # greedy decoding in eval mode, the reference's sample() + ids_to_tokens
    enc.eval()
    dec.eval()
    with torch.no_grad():
        gen = dec.sample(enc(images), MAX_TOKENS)
    itos = list(range(V))
    caps = np.zeros((B, MAX_TOKENS), dtype=np.int32)
    clen = np.zeros(B, dtype=np.int32)
    for b, row in enumerate(gen.tolist()):
        toks = tc.ids_to_tokens(row, itos)
        caps[b, :len(toks)] = toks
        clen[b] = len(toks)
    fx.add("greedy_raw", gen.to(torch.int32))
    fx.add("greedy", caps)
    fx.add("greedy_len", clen)
    os.makedirs(OUT, exist_ok=True)
    fx.write(os.path.join(OUT, fname + ".snfx"))
    print(fname, "greedy:", gen.tolist(), "lengths", clen.tolist(), "loss", loss.item())


def main():
    torch.set_num_threads(1)
    case("caption_step", 0, 1, [5, 7, 3, 6], True)
    # two LSTM layers; lengths up to max_len and a caption of <start> <end> only. The
    # encoder's gradients are left out (the first case checks them) to keep it small.
    case("caption_step_l2", 1, 2, [4, 8, 2, 6], False)


if __name__ == "__main__":
    main()
