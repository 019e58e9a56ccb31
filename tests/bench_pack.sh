#!/usr/bin/env bash
# Benchmark (not a test): sn-pack images/s on one captions JSON + image folder, best of N
# runs (the machine may be shared), on 1 core (1 rank x 1 thread) and 2 cores (2 threads,
# and 2 MPI ranks), default decode and --fast-decode; then the peak resident memory of
# each rank (/usr/bin/time -v) on a second, larger set, for 1 and 2 ranks and two batch
# sizes (memory must not grow with the number of images, only with --batch).
#   tests/bench_pack.sh [BUILD_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-3}
pack=$build/data-prep/sn-pack
vocab=$build/data-prep/sn-vocab
data=../shared/data
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "$(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

best() { # best images/s of $runs runs of "$@", as the tool reports it (JSON read to rename)
  local b=0 r
  for _ in $(seq "$runs"); do
    r=$("$@" 2>/dev/null | sed -nE 's/.* s \(([0-9.]+) images\/s.*/\1/p')
    b=$(echo "if ($r > $b) $r else $b" | bc -l)
  done
  printf '%.1f' "$b"
}

json=$data/coco-mini/annotations/captions_val2017.json
"$vocab" --captions "$json" --quiet --out "$out/v.txt" > /dev/null
args=(--captions "$json" --images "$data/coco-mini/val2017" --vocab "$out/v.txt" --out "$out/o.h5" --no-progress)
echo "coco-mini val2017 (159 images), 256 x 256:"
for mode in "" "--fast-decode"; do
  one=$(best "$pack" "${args[@]}" --threads 1 $mode)
  thr=$(best "$pack" "${args[@]}" --threads 2 $mode)
  rk=$(best mpirun -np 2 "$pack" "${args[@]}" --threads 1 $mode)
  printf '  %-13s 1 core: %6s   2 threads: %6s   2 ranks: %6s images/s   (2 cores = %.2fx / %.2fx of 1 core)\n' \
    "${mode:-default}" "$one" "$thr" "$rk" "$(echo "$thr / $one" | bc -l)" "$(echo "$rk / $one" | bc -l)"
done

json=$data/flickr8k-1000/captions.json
"$vocab" --captions "$json" --quiet --out "$out/f.txt" > /dev/null
args=(--captions "$json" --images "$data/flickr8k-1000/images" --vocab "$out/f.txt" --out "$out/f.h5" --no-progress)
echo "flickr8k-1000 (1000 images), peak resident memory per rank (/usr/bin/time -v):"
for np_batch in 1:32 2:32 1:8 1:128; do
  np=${np_batch%:*} b=${np_batch#*:}
  mpirun -np "$np" bash -c '/usr/bin/time -v -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$out/time" \
    "$pack" "${args[@]}" --threads 1 --batch "$b" > "$out/log" 2>&1
  rss=$(for f in "$out"/time.*; do sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$f"; done | awk '{printf "%s%.1f MB", (NR > 1 ? ", " : ""), $1 / 1024}')
  rate=$(sed -nE 's/.* s \(([0-9.]+) images\/s.*/\1/p' "$out/log")
  rm -f "$out"/time.*
  printf '  %d rank(s), --batch %3d: %s   (%s images/s)\n' "$np" "$b" "$rss" "$rate"
done
