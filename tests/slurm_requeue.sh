#!/usr/bin/env bash
# The Slurm job script, for real: a single-node Slurm cluster (tests/slurm/cluster.sh) runs
# jobs/mnist.sbatch with 2 tasks on a small subset; mid-run the batch script gets USR1 (as
# Slurm sends it before the time limit); the job must checkpoint, requeue itself, resume
# from the checkpoint (restart=1) and finish with weights bitwise equal to an uninterrupted
# 2-rank run of the same command.
#   slurm_requeue.sh REPO_DIR SHARDNET DATA WORK_DIR
set -euo pipefail
repo=$1 sn=$2 data=$3 work=$4
. "$repo/tests/slurm/harness.sh" "$repo"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
args=(--train-limit 6400 --test-limit 200 --epochs 2 --loss-log "$work/out/loss.log")
mkdir -p out
# the reference: the same two ranks x one thread, without interruption
OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe "$sn" train --data "$data" --threads 1 \
    --progress none --train-limit 6400 --test-limit 200 --epochs 2 --save ref.h5 > ref.log
jid=$(SHARDNET_DIR=$repo SHARDNET_BIN=$sn SHARDNET_DATA=$data SHARDNET_OUT=$work/out SHARDNET_CHECKPOINT_EVERY=50 \
      sbatch --parsable --chdir="$work" --ntasks-per-node=2 "$repo/jobs/mnist.sbatch" "${args[@]}")
echo "submitted job $jid"
for _ in $(seq 1200); do [ -f out/loss.log ] && [ "$(wc -l < out/loss.log)" -ge 60 ] && break; sleep 0.1; done
scancel --batch --signal=USR1 "$jid"
echo "sent USR1 after $(wc -l < out/loss.log) steps"
s=$(job_wait "$jid" 1800)
log=$work/shardnet-mnist-$jid.out
cat "$log"
[ "$s" = COMPLETED ] || { echo "FAIL: job ended $s"; exit 1; }
grep -q "got USR1" "$log" || { echo "FAIL: the batch script did not see USR1"; exit 1; }
grep -q "stopped with a checkpoint" "$log" || { echo "FAIL: the ranks did not stop with a checkpoint"; exit 1; }
grep -q "restart=1" "$log" || { echo "FAIL: the job was not requeued"; exit 1; }
grep -q "resumed from .*checkpoint.h5 at epoch" "$log" || { echo "FAIL: the second start did not resume"; exit 1; }
h5diff ref.h5 out/model.h5 /params /params || { echo "FAIL: the requeued job's weights differ from one go"; exit 1; }
echo "ok: job $jid stopped by USR1, requeued, resumed, and ended with the weights of an uninterrupted run"
