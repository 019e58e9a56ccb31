#!/usr/bin/env bash
# Bad IDX input must give a one-line error naming the file and the problem, a non-zero
# exit, and no output file (not even a temporary one).
#   mnist_prep_errors.sh SN_MNIST_PREP RAW_IDX_DIR WORK_DIR
set -u
prep=$1 raw=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fails=0
# expect NAME SUBSTRING -- ARGS...: the tool must fail, print SUBSTRING, leave no output
expect() {
  local name=$1 want=$2; shift 3
  local err
  err=$("$prep" "$@" 2>&1 >/dev/null); local rc=$?
  if [ $rc -eq 0 ]; then echo "FAIL $name: exit 0"; fails=$((fails+1)); return; fi
  if ! grep -qF -- "$want" <<<"$err"; then echo "FAIL $name: message '$err' lacks '$want'"; fails=$((fails+1)); return; fi
  if [ "$(wc -l <<<"$err")" -ne 1 ]; then echo "FAIL $name: more than one line: $err"; fails=$((fails+1)); return; fi
  if ls "$work"/out.h5* >/dev/null 2>&1; then echo "FAIL $name: output left behind"; fails=$((fails+1)); return; fi
  echo "ok   $name: $err"
}
# case DIR: a copy of the raw files to damage (symlinks for the untouched ones)
mkcase() { mkdir -p "$work/$1"; for f in "$raw"/*-ubyte; do ln -sf "$(readlink -f "$f")" "$work/$1/"; done; }

mkcase truncated; rm "$work/truncated/t10k-images-idx3-ubyte"
head -c 100000 "$raw/t10k-images-idx3-ubyte" > "$work/truncated/t10k-images-idx3-ubyte"
expect truncated-checksum "is not that of MNIST" -- --in "$work/truncated" --out "$work/out.h5"
expect truncated-length "truncated or padded" -- --in "$work/truncated" --out "$work/out.h5" --no-verify

mkcase magic; rm "$work/magic/train-labels-idx1-ubyte"
{ printf '\x00\x00\x08\x03'; tail -c +5 "$raw/train-labels-idx1-ubyte"; } > "$work/magic/train-labels-idx1-ubyte"
expect wrong-magic "magic number 2051, expected 2049" -- --in "$work/magic" --out "$work/out.h5" --no-verify

mkcase count; rm "$work/count/t10k-labels-idx1-ubyte"
{ printf '\x00\x00\x08\x01\x00\x00\x27\x0f'; tail -c +9 "$raw/t10k-labels-idx1-ubyte" | head -c 9999; } > "$work/count/t10k-labels-idx1-ubyte"
expect count-mismatch "has 10000 images but" -- --in "$work/count" --out "$work/out.h5" --no-verify

mkcase label; rm "$work/label/t10k-labels-idx1-ubyte"
{ head -c 8 "$raw/t10k-labels-idx1-ubyte"; printf '\x0c'; tail -c +10 "$raw/t10k-labels-idx1-ubyte"; } > "$work/label/t10k-labels-idx1-ubyte"
expect label-range "label 12 of item 0 outside 0..9" -- --in "$work/label" --out "$work/out.h5" --no-verify

mkcase gz; rm "$work/gz/train-labels-idx1-ubyte"
head -c 5000 "$raw/train-labels-idx1-ubyte" | gzip -c | head -c 2000 > "$work/gz/train-labels-idx1-ubyte.gz"
expect truncated-gzip "train-labels-idx1-ubyte.gz" -- --in "$work/gz" --out "$work/out.h5" --no-verify

expect missing "no such file" -- --in "$work/nowhere" --out "$work/out.h5"
expect unwritable "cannot create" -- --in "$raw" --out "$work/no/such/dir/out.h5"
expect usage "--in and --out are required" -- --in "$raw"

if [ $fails -ne 0 ]; then echo "$fails bad-input case(s) failed"; exit 1; fi
echo "all bad-input cases refused cleanly"
