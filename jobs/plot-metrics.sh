#!/usr/bin/env bash
# Turns a metrics file of `shardnet train --metrics` (JSON lines, one per epoch) into a PNG
# with train/test loss and test accuracy per epoch (gnuplot).
#   jobs/plot-metrics.sh metrics.jsonl out.png [TITLE]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,4p' "$0"; exit 2; }
in=$1 png=$2 title=${3:-shardnet MNIST ConvNet}
[ -s "$in" ] || { echo "plot-metrics.sh: $in is missing or empty" >&2; exit 1; }
tab=$(mktemp)
trap 'rm -f "$tab"' EXIT
# epoch train_loss test_loss test_accuracy(%)
sed -E 's/.*"epoch": ([0-9]+).*"train_loss": ([-0-9.e]+).*"test_loss": ([-0-9.e]+).*"test_accuracy": ([-0-9.e]+).*/\1 \2 \3 \4/' "$in" \
  | awk '{ printf "%s %s %s %.4f\n", $1, $2, $3, 100 * $4 }' > "$tab"
gnuplot 2> >(grep -v "^Warning: empty" >&2) <<GP
set terminal pngcairo size 900,400 noenhanced
set output "$png"
set multiplot layout 1,2 title "$title"
set xlabel "epoch"; set grid; set key top right
set xtics 1
set ylabel "loss"
plot "$tab" using 1:2 with linespoints title "train loss", "$tab" using 1:3 with linespoints title "test loss"
set ylabel "test accuracy (%)"; set key bottom right
plot "$tab" using 1:4 with linespoints title "test accuracy"
unset multiplot
GP
