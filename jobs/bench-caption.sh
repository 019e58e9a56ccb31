#!/usr/bin/env bash
# Captioning training speed, shardnet beside the PyTorch reference
# (../shared/bench/torch_caption.py), in one sitting, on the reference training set
# (flickr8k-1000 + coco-mini train2017, 256x256, batch 32). For each configuration it
# reports images/s (caption-image pairs over whole steps after 3 warm-up steps, data
# included, as the reference counts them), the time per
# phase and the peak resident memory per process; then the LSTM(256, 512) forward+backward
# micro-benchmark (B 32, T 20) of both, and the frozen-encoder feature cache (first epoch
# against a later one). With --repeat N each configuration runs N times, shardnet and
# PyTorch in turn, and the ratio of each pair and their median are printed: the machine's
# speed drifts between runs, a pair run back to back drifts least.
#   jobs/bench-caption.sh [--data DIR] [--work DIR] [--configs "small/112 small/224 resnet18/224"]
#                         [--repeat N] [--cache-images N] [--no-torch] [--no-lstm] [--no-cache] [--threads T]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${SHARDNET_DATA:-../shared/data} work=runs/bench-caption configs="small/112 small/224 resnet18/224" torch=1 threads=2 cache_images=400
repeat=1 lstm=1 cache=1
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --no-torch) torch=0; shift ;;
    --threads) threads=$2; shift 2 ;;
    --cache-images) cache_images=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --no-lstm) lstm=0; shift ;;
    --no-cache) cache=0; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench-caption.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
case "$repeat" in ''|*[!0-9]*|0) echo "bench-caption.sh: --repeat needs a positive count, not '$repeat'" >&2; exit 2 ;; esac
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=$threads
mkdir -p "$work"
flickr=$data/flickr8k-1000 coco=$data/coco-mini
if [ ! -f "$work/coco_train.h5" ]; then
  build/data-prep/sn-vocab --captions "$flickr/captions.json" --captions "$coco/annotations/captions_train2017.json" \
    --threshold 4 --out "$work/vocab.txt" --quiet
  build/data-prep/sn-pack --captions "$flickr/captions.json" --images "$flickr/images" --vocab "$work/vocab.txt" \
    --out "$work/flickr_train.h5" --no-progress 2>/dev/null
  build/data-prep/sn-pack --captions "$coco/annotations/captions_train2017.json" --images "$coco/train2017" \
    --vocab "$work/vocab.txt" --out "$work/coco_train.h5" --no-progress 2>/dev/null
fi
log=$work/last.log
printf '%-26s %9s %10s  %s\n' "run" "images/s" "peak MB" "phases (s)"
for cfg in $configs; do
  enc=${cfg%/*} crop=${cfg#*/} steps=13 frozen=() tfrozen=() tthreads=$threads
  case "$enc" in
    resnet18) steps=8 ;;
    resnet152f) enc=resnet152 frozen=(--freeze-encoder) tfrozen=(--freeze-encoder) steps=7 ;;
  esac
  ratios=""
  for r in $(seq "$repeat"); do
    /usr/bin/time -f "%M" -o "$log.rss" build/shardnet train --model caption --data "$work/flickr_train.h5" \
      --data "$work/coco_train.h5" --encoder "$enc" "${frozen[@]}" --crop "$crop" --batch 32 --max-steps "$steps" \
      --threads "$threads" --progress none > "$log" 2>&1 || { cat "$log"; exit 1; }
    # like the reference: the steps after 3 warm-up steps
    ips=$(sed -nE 's/.*after the first [0-9]+ steps: ([0-9.]+) images\/s.*/\1/p' "$log")
    phases=$(grep 'time per phase' "$log" | sed 's/.*(rank 0): //')
    sn_ips=$ips
    printf '%-26s %9s %10d  %s\n' "shardnet $cfg x$threads" "$ips" $(( $(cat "$log.rss") / 1024 )) "$phases"
    if [ $torch = 1 ] && [ -f ../shared/bench/torch_caption.py ]; then
      /usr/bin/time -f "%M" -o "$log.rss" /usr/bin/python3 ../shared/bench/torch_caption.py \
        --train "$flickr/captions.json" "$flickr/images" --train "$coco/annotations/captions_train2017.json" \
        "$coco/train2017" --drop-last --encoder "$enc" "${tfrozen[@]}" --crop "$crop" --threads "$tthreads" \
        --max-steps "$steps" --cache "$work/torch-cache" > "$log" 2>&1 || { cat "$log"; exit 1; }
      ips=$(grep -o 'throughput over .*: [0-9.]* images/s' "$log" | awk '{print $(NF-1)}')
      printf '%-26s %9s %10d  %s\n' "pytorch $cfg x$tthreads" "$ips" $(( $(cat "$log.rss") / 1024 )) \
        "$(grep -o 'phases .*' "$log")"
      ratios="$ratios $(awk -v a="$sn_ips" -v b="$ips" 'BEGIN { printf "%.2f", a / b }')"
    fi
  done
  if [ "$repeat" -gt 1 ] && [ -n "$ratios" ]; then
    echo "$ratios" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk -v c="$cfg" '{ v[NR] = $1; l = l " " $1 }
      END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%-26s ratios%s: median %.2fx\n", "  " c, l, m }'
  fi
done
if [ $lstm = 1 ]; then
  echo "LSTM(256, 512) forward + backward, B 32, T 20:"
  for t in 1 2; do
    OMP_NUM_THREADS=$t build/tests/bench_lstm 50 $t 2>&1 | tail -1 | sed "s/^/  shardnet x$t: /"
    [ $torch = 0 ] || /usr/bin/python3 ../shared/bench/torch_caption.py --lstm-bench 50 --threads $t 2>&1 | tail -1 \
      | sed "s/^/  pytorch  x$t: /"
  done
fi
[ $cache = 1 ] || exit 0
echo "Frozen ResNet-152 encoder at 224 (--freeze-encoder), first $cache_images training images, 2 epochs:"
build/shardnet train --model caption --data "$work/flickr_train.h5" --encoder resnet152 --freeze-encoder --crop 224 \
  --batch 32 --epochs 2 --train-limit "$cache_images" --threads "$threads" --progress none \
  --metrics "$work/frozen.jsonl" > "$log" 2>&1 || { cat "$log"; exit 1; }
awk -F'"seconds": ' '{ split($2, a, ","); t[NR] = a[1] } END {
  printf "  shardnet: epoch 1 %.1f s (body features of every image, once), epoch 2 %.1f s: %.1fx faster\n",
         t[1], t[2], t[1] / t[2] }' "$work/frozen.jsonl"
