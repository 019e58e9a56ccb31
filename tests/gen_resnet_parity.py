#!/usr/bin/python3
"""Writes the reference data of the ResNet parity test (tests/resnet.cmake, test_resnet.c):

    /usr/bin/python3 tests/gen_resnet_parity.py --images DIR --out-dir DIR [--size 128]

For resnet18 and resnet50: torchvision's random init (weights=None) after a fixed
torch.manual_seed, batch-norm affine parameters drawn at random and running statistics
accumulated over a few training-mode forwards of random inputs (momentum None:
cumulative averages), so every BatchNorm2d has non-trivial weight, bias, mean and
variance. The state_dict goes through data-prep/convert_torchvision.py (the path a user
takes) to <out-dir>/<arch>.h5. The inputs are the first two JPEGs of --images (sorted by
name) resized with PIL to size x size and normalised with the ImageNet mean/std; the
expected outputs are torchvision's evaluation-mode body features
nn.Sequential(*children()[:-1])(x).flatten(1), shape (2, F).

For resnet18 it also runs one training-mode forward and backward of L = sum(y * r) with a
fixed random r (batch statistics), and stores y, r, the input gradient and the gradient of
every parameter,
under the body's names, so the test checks the backward end to end.

Output <out-dir>/resnet_parity.h5: /x (2, 3, S, S); /<arch>/y_eval (2, F);
/resnet18/y_train, /resnet18/r (2, 512); /resnet18/dx (2, 3, S, S);
/resnet18/grad/<body name> per parameter.
Needs python3-torch, python3-torchvision, python3-pil, python3-h5py.
"""
import argparse
import copy
import os
import subprocess
import sys

import h5py
import numpy as np
import torch
import torchvision
from PIL import Image

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PREFIX = "encoder.body."
TOP = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def body_of(model):
    return torch.nn.Sequential(*list(model.children())[:-1])


def make_model(arch, seed):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.momentum = None
    body = body_of(model).train()
    with torch.no_grad():
        for _ in range(3):
            body(torch.randn(4, 3, 64, 64))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    return model


def load_images(folder, size):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg")))[:2]
    if len(names) < 2:
        sys.exit(f"gen_resnet_parity.py: {folder}: need 2 JPEG files, found {len(names)}")
    xs = []
    for n in names:
        im = Image.open(os.path.join(folder, n)).convert("RGB").resize((size, size), Image.BILINEAR)
        a = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
        xs.append((a - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1))
    return torch.stack(xs).contiguous(), names


def body_name(key):
    top, _, rest = key.partition(".")
    return f"{TOP[top]}.{rest}"


def main():
    ap = argparse.ArgumentParser(description="Reference outputs of torchvision ResNet bodies for test_resnet.")
    ap.add_argument("--images", required=True, help="folder of JPEGs (coco-mini val2017)")
    ap.add_argument("--out-dir", required=True, help="where resnet_parity.h5 and <arch>.h5 go")
    ap.add_argument("--size", type=int, default=128, help="input height and width (default %(default)s)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(2)
    converter = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data-prep", "convert_torchvision.py")
    x, names = load_images(args.images, args.size)
    out = h5py.File(os.path.join(args.out_dir, "resnet_parity.h5.tmp"), "w")
    out.create_dataset("x", data=x.numpy())
    out.attrs["images"] = ",".join(names)
    for arch, seed in (("resnet18", 18), ("resnet50", 50)):
        model = make_model(arch, seed)
        pth = os.path.join(args.out_dir, f"{arch}.pth")
        torch.save(model.state_dict(), pth)
        subprocess.run([sys.executable, converter, "--state-dict", pth, "--arch", arch,
                        "--out", os.path.join(args.out_dir, f"{arch}.h5")], check=True)
        os.unlink(pth)
        body = body_of(model).eval()
        with torch.no_grad():
            y = body(x).flatten(1)
        g = out.create_group(arch)
        g.create_dataset("y_eval", data=y.numpy())
        print(f"{arch}: eval features {tuple(y.shape)}, mean {y.mean():.4f}, max {y.max():.4f}")
        if arch != "resnet18":
            continue
        train = copy.deepcopy(body).train()
        torch.manual_seed(1)
        xg = x.clone().requires_grad_(True)
        yt = train(xg).flatten(1)
        r = torch.rand(yt.shape) * 2 - 1
        (yt * r).sum().backward()
        g.create_dataset("y_train", data=yt.detach().numpy())
        g.create_dataset("dx", data=xg.grad.numpy())
        g.create_dataset("r", data=r.numpy())
        gg = g.create_group("grad")
        full = dict(model.named_parameters())
        for k in full:
            if k.startswith("fc."):
                continue
            p = dict(train.named_parameters())[body_name(k)]
            gg.create_dataset(PREFIX + body_name(k), data=p.grad.numpy())
    out.close()
    os.replace(os.path.join(args.out_dir, "resnet_parity.h5.tmp"), os.path.join(args.out_dir, "resnet_parity.h5"))


if __name__ == "__main__":
    main()
