#!/usr/bin/python3
"""The reference notebook's PIL loop, timed: the baseline that sn-resize is compared with.

    /usr/bin/python3 tests/bench_pil_resize.py --in DIR [--out DIR] [--size 256] [--repeat N]

For every .jpg/.jpeg/.png file of DIR: Image.open, .convert("RGB"), .resize((S, S),
Image.LANCZOS) (the notebook's ANTIALIAS), save in the image's own format (JPEG quality 75,
PIL's default) to --out (a temporary folder by default). One process, one core. Prints
images/s of the best of --repeat runs (the machine may be shared), and images per CPU-second
of the loop (time.process_time; steadier than wall-clock on a busy machine, and comparable
with /usr/bin/time -f '%U %S' of a single-threaded sn-resize minus its start-up).
"""
import argparse
import os
import tempfile
import time

from PIL import Image


def run(files, src, dst, size):
    """Returns (wall seconds, CPU seconds) of one pass over files."""
    t, c = time.perf_counter(), time.process_time()
    for name in files:
        with Image.open(os.path.join(src, name)) as im:
            fmt = im.format
            im.convert("RGB").resize((size, size), Image.LANCZOS).save(os.path.join(dst, name), fmt)
    return time.perf_counter() - t, time.process_time() - c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--in", dest="src", required=True)
    ap.add_argument("--out")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    files = sorted(f for f in os.listdir(a.src) if f.lower().endswith((".jpg", ".jpeg", ".png")) and not f.startswith("."))
    with tempfile.TemporaryDirectory() as tmp:
        dst = a.out or tmp
        os.makedirs(dst, exist_ok=True)
        runs = [run(files, a.src, dst, a.size) for _ in range(a.repeat)]
    best = min(w for w, _ in runs)
    cpu = min(c for _, c in runs)
    print("PIL: %d images in %.3f s: %.1f images/s (1 process); %.1f images per CPU-second" %
          (len(files), best, len(files) / best, len(files) / cpu))


if __name__ == "__main__":
    main()
