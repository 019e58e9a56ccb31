#!/usr/bin/env bash
# jobs/caption.sbatch for real: a single-node Slurm cluster (tests/slurm/cluster.sh) runs the
# whole captioning pipeline with 2 tasks (vocabulary, packing at 32x32, a short training,
# evaluation) on the real data; the job must complete with metrics, one greedy caption per
# validation image (159) and the HTML gallery.
#   slurm_caption.sh REPO_DIR SHARDNET DATA_DIR WORK_DIR
set -euo pipefail
repo=$1 sn=$2 data=$3 work=$4
. "$repo/tests/slurm/harness.sh" "$repo"
rm -rf "$work" && mkdir -p "$work/out" && cd "$work"
jid=$(SHARDNET_DIR=$repo SHARDNET_BIN=$sn SHARDNET_DATA=$data SHARDNET_OUT=$work/out SHARDNET_SIZE=32 \
      sbatch --parsable --chdir="$work" --ntasks-per-node=2 "$repo/jobs/caption.sbatch" \
      --crop 32 --epochs 1 --max-steps 10 --embed 32 --hidden 64)
echo "submitted job $jid"
s=$(job_wait "$jid" 3000)
log=$work/shardnet-caption-$jid.out
cat "$log"
[ "$s" = COMPLETED ] || { echo "FAIL: job ended $s"; exit 1; }
grep -q "identical on all 2 ranks" "$log" || { echo "FAIL: training did not run on 2 ranks"; exit 1; }
# the line of the eval step (training's validation prints BLEU too)
grep -q "checkpoint.h5 on .*coco_val.h5: 159 images, 795 captions" "$log" || { echo "FAIL: no eval step"; exit 1; }
[ "$(wc -l < out/val_captions.tsv)" = 159 ] || { echo "FAIL: val_captions.tsv has not 159 lines"; exit 1; }
[ -s out/gallery.html ] && [ -s out/metrics.jsonl ] || { echo "FAIL: gallery or metrics missing"; exit 1; }
echo "ok: job $jid ran vocabulary, packing, training on 2 ranks and evaluation"
