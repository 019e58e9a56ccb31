#!/usr/bin/python3
"""Checks data-prep/convert_torchvision.py (ctest convert_torchvision, tests/resnet.cmake):

  - --arch resnet18 --random-seed 3 writes exactly torchvision's resnet18 body after
    torch.manual_seed(3): the same names (conv1 -> 0, bn1 -> 1, layerN -> N+3, behind the
    prefix), shapes and values, no fc, no num_batches_tracked, float32, magic and version;
  - a state_dict with a missing key, an unexpected key and a wrong shape is refused (exit
    status 1, nothing written) with a message listing all three;
  - without --arch, a resnet34 state_dict saved from DataParallel ("module." keys) is
    recognised and converted.

    /usr/bin/python3 tests/convert_torchvision_check.py WORKDIR
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.join(HERE, "..", "data-prep", "convert_torchvision.py")
TOP = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def convert(*args):
    return subprocess.run([sys.executable, CONVERTER, *args], capture_output=True, text=True)


def check(cond, what):
    if not cond:
        sys.exit(f"convert_torchvision_check: FAILED: {what}")
    print(f"ok: {what}")


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "r18_seed3.h5")
    r = convert("--arch", "resnet18", "--random-seed", "3", "--out", out, "--prefix", "enc")
    check(r.returncode == 0, f"--random-seed conversion runs ({r.stderr.strip()})")
    torch.manual_seed(3)
    ref = torchvision.models.resnet18(weights=None).state_dict()
    want = {"enc." + TOP[k.split(".")[0]] + k[k.index("."):]: v for k, v in ref.items()
            if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    with h5py.File(out, "r") as f:
        got = f["params"]
        check(sorted(got.keys()) == sorted(want.keys()), f"{len(want)} names as the body's state_dict, prefix 'enc.'")
        check(all(got[k].dtype == np.float32 and got[k].shape == tuple(want[k].shape) for k in want),
              "float32 datasets with the tensors' shapes")
        check(all(np.array_equal(got[k][...], want[k].numpy()) for k in want), "values equal the seeded torchvision init")
        check(f.attrs["magic"] == b"shardnet" and int(f.attrs["format_version"]) == 1, "magic and format_version")

    bad = dict(ref)
    del bad["layer2.0.downsample.0.weight"]
    bad["head.weight"] = torch.zeros(3)
    bad["layer4.1.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    torch.save(bad, os.path.join(work, "bad.pth"))
    out_bad = os.path.join(work, "bad.h5")
    r = convert("--state-dict", os.path.join(work, "bad.pth"), "--arch", "resnet18", "--out", out_bad)
    check(r.returncode == 1 and not os.path.exists(out_bad), "a broken state_dict is refused, nothing written")
    for part in ("missing key(s): layer2.0.downsample.0.weight", "unexpected key(s): head.weight",
                 "layer4.1.conv2.weight has shape [512, 512, 1, 1], [512, 512, 3, 3] expected"):
        check(part in r.stderr, f"the message says '{part}'")

    sd34 = {"module." + k: v for k, v in torchvision.models.resnet34(weights=None).state_dict().items()}
    torch.save(sd34, os.path.join(work, "r34_ddp.pth"))
    r = convert("--state-dict", os.path.join(work, "r34_ddp.pth"), "--out", os.path.join(work, "r34.h5"))
    check(r.returncode == 0 and "resnet34 body, 180 tensors" in r.stdout, "resnet34 recognised without --arch")


if __name__ == "__main__":
    main()
