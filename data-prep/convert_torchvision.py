#!/usr/bin/python3
"""Converts a torchvision ResNet's weights to a shardnet parameter file for the encoder body
of sn_resnet_body_new (include/shardnet/resnet.h):

    /usr/bin/python3 data-prep/convert_torchvision.py --state-dict resnet152.pth --arch resnet152 \\
        --out resnet152_body.h5
    /usr/bin/python3 data-prep/convert_torchvision.py --arch resnet18 --random-seed 0 --out r18.h5

The body is nn.Sequential(*list(resnet.children())[:-1]), so torchvision's names map as
conv1 -> 0, bn1 -> 1, layer1..layer4 -> 4..7 (relu 2, maxpool 3 and avgpool 8 hold no
parameters); fc and num_batches_tracked are dropped. The output follows shardnet's
checkpoint layout (include/shardnet/checkpoint.h): one float32 dataset /params/<prefix><name>
per tensor with the tensor's shape, root attributes magic "shardnet" and format_version 1;
load it with sn_checkpoint_load_prefix(path, params, "<prefix>", ...).

The state_dict's keys and shapes are checked against torchvision's model of --arch (or of
each ResNet when --arch is not given) and every difference is listed. The file is written
under a temporary name and renamed. This script must not write anything but --out.
"""
import argparse
import os
import re
import sys

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
MAGIC = "shardnet"             # SN_CHECKPOINT_MAGIC
FORMAT_VERSION = 1             # SN_CHECKPOINT_VERSION
TOP = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def fail(msg):
    sys.exit(f"convert_torchvision.py: {msg}")


def reference_shapes(arch):
    """{state_dict key: shape} of torchvision's model, without num_batches_tracked."""
    import torchvision
    model = getattr(torchvision.models, arch)(weights=None)
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def load_state_dict(path):
    import torch
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
        fail(f"{path}: cannot load with torch.load ({e})")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]   # a training checkpoint that wraps the weights
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        fail(f"{path}: expected a state_dict (a dict of name -> tensor), got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):   # saved from DataParallel / DDP
        obj = {k[len("module."):]: v for k, v in obj.items()}
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        fail(f"{path}: entries that are not tensors: {', '.join(bad[:5])}")
    return {k: v for k, v in obj.items() if not k.endswith("num_batches_tracked")}


def differences(sd, ref):
    """Human-readable list of how sd's keys/shapes differ from ref (empty: it matches)."""
    out = []
    missing = [k for k in ref if k not in sd]
    extra = [k for k in sd if k not in ref]
    shape = [k for k in ref if k in sd and tuple(sd[k].shape) != ref[k]]
    if missing:
        out.append(f"{len(missing)} missing key(s): {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
    if extra:
        out.append(f"{len(extra)} unexpected key(s): {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''}")
    for k in shape[:6]:
        out.append(f"{k} has shape {list(sd[k].shape)}, {list(ref[k])} expected")
    if len(shape) > 6:
        out.append(f"... and {len(shape) - 6} more shape difference(s)")
    return out


def body_name(key):
    """torchvision key -> index in Sequential(children()[:-1]); None for fc."""
    top, _, rest = key.partition(".")
    if top == "fc":
        return None
    if top not in TOP or not rest:
        raise KeyError(key)
    return f"{TOP[top]}.{rest}"


def write_h5(path, tensors, arch, source):
    import h5py
    import numpy as np
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("params")
            for name, v in tensors:
                g.create_dataset(name, data=v.detach().cpu().numpy().astype(np.float32))
            f.attrs["magic"] = np.bytes_(MAGIC)
            f.attrs["format_version"] = np.int32(FORMAT_VERSION)
            f.attrs["model"] = np.bytes_(f"torchvision_{arch}_body")
            f.attrs["source"] = np.bytes_(source)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        fail(f"{path}: cannot write ({e})")


def main():
    ap = argparse.ArgumentParser(
        description="Convert a torchvision ResNet (18/34/50/101/152) to a shardnet parameter file "
                    "holding its encoder body (everything but fc).")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--state-dict", metavar="PTH", help="a torchvision ResNet state_dict saved with torch.save")
    src.add_argument("--random-seed", type=int, metavar="N",
                     help="instead: torchvision's random init (weights=None) after torch.manual_seed(N)")
    ap.add_argument("--arch", choices=ARCHS,
                    help="the ResNet the weights belong to (required with --random-seed; "
                         "with --state-dict it is recognised from the keys when left out)")
    ap.add_argument("--out", required=True, metavar="H5", help="the shardnet parameter file to write")
    ap.add_argument("--prefix", default="encoder.body.",
                    help="put in front of every name (default %(default)s; a missing final '.' is added)")
    args = ap.parse_args()

    import torch
    prefix = args.prefix
    if prefix and not prefix.endswith("."):
        prefix += "."
    if not re.fullmatch(r"[A-Za-z0-9_.]*", prefix):
        fail(f"--prefix '{args.prefix}': use letters, digits, '_' and '.' only")
    if args.random_seed is not None:
        if not args.arch:
            fail("--random-seed needs --arch")
        import torchvision
        torch.manual_seed(args.random_seed)
        model = getattr(torchvision.models, args.arch)(weights=None)
        sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        arch, source = args.arch, f"torchvision {args.arch} weights=None, torch.manual_seed({args.random_seed})"
    else:
        sd = load_state_dict(args.state_dict)
        source = os.path.basename(args.state_dict)
        if args.arch:
            arch = args.arch
            diff = differences(sd, reference_shapes(arch))
            if diff:
                fail(f"{args.state_dict} is not a torchvision {arch} state_dict:\n  " + "\n  ".join(diff))
        else:
            arch = next((a for a in ARCHS if not differences(sd, reference_shapes(a))), None)
            if arch is None:
                best = min(ARCHS, key=lambda a: len(differences(sd, reference_shapes(a))))
                fail(f"{args.state_dict} matches no torchvision ResNet; nearest is {best}:\n  "
                     + "\n  ".join(differences(sd, reference_shapes(best))))
    tensors = []
    for k, v in sd.items():
        name = body_name(k)
        if name is None:
            continue
        if not v.is_floating_point():
            fail(f"{k} holds {v.dtype} values, floating point expected")
        tensors.append((prefix + name, v))
    write_h5(args.out, tensors, arch, source)
    n = sum(v.numel() for _, v in tensors)
    print(f"convert_torchvision: {arch} body, {len(tensors)} tensors ({n} values) -> {args.out}")


if __name__ == "__main__":
    main()
