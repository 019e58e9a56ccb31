#!/usr/bin/env bash
# Benchmark (not a test): sn-resize against the notebook's PIL loop on one folder, in the
# same sitting. Best of N runs of each (the machine may be shared), images/s:
#   PIL (1 process); sn-resize default and --fast-decode on 1 core (1 rank x 1 thread),
#   2 cores as 2 threads and as 2 MPI ranks; then peak resident memory (/usr/bin/time -v).
#   tests/bench_resize.sh [BUILD_DIR] [IMAGE_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dir=${2:-../shared/data/coco-mini/val2017}
runs=${3:-3}
tool=$build/data-prep/sn-resize
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
n=$(find "$dir" -maxdepth 1 \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | wc -l)
echo "folder: $dir ($n images), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

best() { # prints the best images/s of $runs runs of "$@", as the tool reports it (the
          # time from the listed folder to the last file, like PIL's loop: no process start)
  local b=0 r
  for _ in $(seq "$runs"); do
    rm -rf "$out/o"
    r=$("$@" 2>/dev/null | sed -nE 's/.* s \(([0-9.]+) images\/s.*/\1/p')
    b=$(echo "if ($r > $b) $r else $b" | bc -l)
  done
  printf '%.1f' "$b"
}

pil=$(/usr/bin/python3 tests/bench_pil_resize.py --in "$dir" --out "$out/pil" --repeat "$runs" | sed -E 's/.*: ([0-9.]+) images\/s.*/\1/')
echo "PIL notebook loop, 1 process:             $pil images/s"
for mode in "" "--fast-decode"; do
  label=${mode:-default}
  one=$(best "$tool" --in "$dir" --out "$out/o" --threads 1 --no-progress $mode)
  thr=$(best "$tool" --in "$dir" --out "$out/o" --threads 2 --no-progress $mode)
  rk=$(best mpirun -np 2 "$tool" --in "$dir" --out "$out/o" --threads 1 --no-progress $mode)
  printf 'sn-resize %-13s 1 core: %7s   2 threads: %7s   2 ranks: %7s images/s   (1 core = %.2fx PIL; 2 cores = %.2fx / %.2fx of 1 core)\n' \
    "$label" "$one" "$thr" "$rk" "$(echo "$one / $pil" | bc -l)" "$(echo "$thr / $one" | bc -l)" "$(echo "$rk / $one" | bc -l)"
done
for mode in "" "--fast-decode"; do
  rm -rf "$out/o"
  rss=$(/usr/bin/time -v "$tool" --in "$dir" --out "$out/o" --threads 2 --no-progress $mode 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p')
  echo "peak RSS, 1 rank x 2 threads ${mode:-default}: $((rss / 1024)) MiB"
done
