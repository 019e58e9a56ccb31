#!/usr/bin/env bash
# MNIST training speed, shardnet beside the PyTorch reference, in one sitting.
# For each layout (ranks x threads) it runs STEPS optimizer steps of the reference recipe
# and reports samples/s, the share of time in forward, backward, allreduce and optimizer
# (rank 0) and the peak resident memory per rank; then PyTorch's torch_mnist.py with the
# same number of batches at 1 and 2 threads (if ../shared/bench and python3-torch exist).
#   jobs/bench-mnist.sh [--steps N] [--layouts "1x1 1x2 2x1"] [--no-torch]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=600 layouts="1x1 1x2 2x1" torch=1
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --layouts) layouts=$2; shift 2 ;;
    --no-torch) torch=0; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "bench-mnist.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -f data/mnist.h5 ] || bash jobs/fetch-mnist.sh --build build data
log=$(mktemp)
trap 'rm -f "$log"' EXIT
printf '%-16s %10s %7s %7s %8s %7s %6s %14s\n' "ranks x threads" samples/s fwd bwd allred optim data "peak MB/rank"
for lay in $layouts; do
  r=${lay%x*} t=${lay#*x}
  OMP_NUM_THREADS=$t mpirun -np "$r" --map-by "slot:PE=$t" --bind-to core:overload-allowed \
      build/shardnet train --data data/mnist.h5 --threads "$t" --progress none --max-steps "$steps" \
      --test-limit 1000 > "$log" 2>&1 || { cat "$log"; exit 1; }
  awk -v lay="shardnet ${r}x${t}" '
    /^shardnet: done:/ { s = $0; sub(/.*\(/, "", s); sub(/ samples.*/, "", s); sps = s
                         m = $0; sub(/.*per rank /, "", m); sub(/ MB.*/, "", m); mem = m }
    /time per phase/ { for (i = 1; i <= NF; i++) { v = $(i+1) + 0
        if ($i == "data") d = v; if ($i == "forward") f = v; if ($i == "backward") b = v
        if ($i == "allreduce") a = v; if ($i == "optimizer") o = v } }
    END { tot = d + f + b + a + o; if (tot == 0) tot = 1
          printf "%-16s %10s %6.1f%% %6.1f%% %7.1f%% %6.1f%% %5.1f%% %14s\n", lay, sps,
                 100*f/tot, 100*b/tot, 100*a/tot, 100*o/tot, 100*d/tot, mem }' "$log"
done
core=$(grep -o "BLAS kernels [A-Za-z0-9]*" "$log" | head -1 | awk '{print $3}')
echo "shardnet BLAS kernels: $core"
# PyTorch as Debian ships it (its Linear layers use the system OpenBLAS, whose kernel choice
# the environment decides), and with OPENBLAS_CORETYPE set to the kernels shardnet uses.
if [ $torch = 1 ] && [ -f ../shared/bench/torch_mnist.py ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  for ct in "${OPENBLAS_CORETYPE:-}" "$core"; do
    for t in 1 2; do
      OPENBLAS_CORETYPE=$ct /usr/bin/time -f "%M" -o "$log.rss" /usr/bin/python3 ../shared/bench/torch_mnist.py \
          --data data/mnist-idx --threads "$t" --max-batches "$steps" --epochs 1 > "$log" 2>&1 || { cat "$log"; exit 1; }
      sps=$(grep -o '= [0-9.]* samples/s' "$log" | tail -1 | awk '{print $2}')
      printf '%-16s %10s %44s %14d\n' "pytorch 1x$t" "$sps" "(OPENBLAS_CORETYPE=${ct:-unset})" $(( $(cat "$log.rss") / 1024 ))
      rm -f "$log.rss"
    done
    [ "$core" != "${OPENBLAS_CORETYPE:-}" ] || break
  done
fi
