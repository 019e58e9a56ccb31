#!/usr/bin/env bash
# Turns a metrics file of `shardnet train --metrics` (JSON lines, one per epoch) into a PNG
# with train/test loss and test accuracy per epoch (gnuplot). A captioning run's file
# (val_loss, bleu) gives train/validation loss and BLEU-1..4 per epoch instead, with a
# reference curve "epoch train_loss val_loss" per line from REFERENCE.tsv if given.
#   jobs/plot-metrics.sh metrics.jsonl out.png [TITLE] [REFERENCE.tsv]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,6p' "$0"; exit 2; }
in=$1 png=$2 title=${3:-shardnet MNIST ConvNet}
[ -s "$in" ] || { echo "plot-metrics.sh: $in is missing or empty" >&2; exit 1; }
tab=$(mktemp)
trap 'rm -f "$tab"' EXIT
# Two plots side by side, per epoch: the gnuplot commands of both come on stdin.
plot_two() {
  { cat <<GP
set terminal pngcairo size 900,400 noenhanced
set output "$png"
set multiplot layout 1,2 title "$title"
set xlabel "epoch"; set grid; set key top right
set xtics 1
GP
    cat
    echo "unset multiplot"
  } | gnuplot 2> >(grep -v "^Warning: empty" >&2)
}
if grep -q '"val_loss"' "$in"; then
  ref=${4:-}
  [ -n "${3:-}" ] || title="shardnet captioning"   # an empty TITLE (to give a REFERENCE) too
  # epoch train_loss val_loss bleu1..4 (%)
  sed -E 's/.*"epoch": ([0-9]+).*"train_loss": ([-0-9.e]+).*"val_loss": ([-0-9.e]+).*"bleu": \[([-0-9.e]+), ([-0-9.e]+), ([-0-9.e]+), ([-0-9.e]+)\].*/\1 \2 \3 \4 \5 \6 \7/' "$in" \
    | awk '{ printf "%s %s %s %.3f %.3f %.3f %.3f\n", $1, $2, $3, 100 * $4, 100 * $5, 100 * $6, 100 * $7 }' > "$tab"
  refplot=""
  [ -z "$ref" ] || refplot=", \"$ref\" using 1:2 with lines dashtype 2 title \"PyTorch train\", \"$ref\" using 1:3 with lines dashtype 2 title \"PyTorch val\""
  plot_two <<GP
set ylabel "loss (mean NLL per token)"
plot "$tab" using 1:2 with linespoints title "train loss", "$tab" using 1:3 with linespoints title "val loss"$refplot
set ylabel "BLEU (%)"; set key top right
plot for [i=4:7] "$tab" using 1:i with linespoints title sprintf("BLEU-%d", i - 3)
GP
  exit 0
fi
# epoch train_loss test_loss test_accuracy(%)
sed -E 's/.*"epoch": ([0-9]+).*"train_loss": ([-0-9.e]+).*"test_loss": ([-0-9.e]+).*"test_accuracy": ([-0-9.e]+).*/\1 \2 \3 \4/' "$in" \
  | awk '{ printf "%s %s %s %.4f\n", $1, $2, $3, 100 * $4 }' > "$tab"
plot_two <<GP
set ylabel "loss"
plot "$tab" using 1:2 with linespoints title "train loss", "$tab" using 1:3 with linespoints title "test loss"
set ylabel "test accuracy (%)"; set key bottom right
plot "$tab" using 1:4 with linespoints title "test accuracy"
GP
