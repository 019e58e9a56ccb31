#!/usr/bin/env bash
# Stop-and-resume equals one go, bit for bit (parameters and optimizer state):
#  1. a run stopped by --max-steps mid-epoch and resumed from its final checkpoint;
#  2. periodic checkpoints (--checkpoint-every) across an epoch boundary, resumed from one;
#  3. a run stopped by SIGUSR1 (sent to mpirun, which forwards it to every rank) while
#     training: it must exit with status 4 after writing a checkpoint; then resumed.
#   resume.sh SHARDNET MPIEXEC DATA WORK_DIR NP
set -euo pipefail
sn=$1 mpiexec=$2 data=$3 work=$4 np=$5
rm -rf "$work" && mkdir -p "$work" && cd "$work"
common=(--data "$data" --train-limit 640 --test-limit 64 --epochs 2 --batch 32 --progress none --threads 1 --seed 5)
run() { "$mpiexec" -np "$np" --oversubscribe "$sn" train "${common[@]}" "$@"; }
same() {   # same A B WHAT: parameters and optimizer state identical to the bit
  h5diff "$1" "$2" /params /params >/dev/null && h5diff "$1" "$2" /optim /optim >/dev/null \
    || { h5diff -r "$1" "$2" | head -20; echo "FAIL: $3"; exit 1; }
  echo "ok: $3"
}
run --save one-go.h5 > one-go.log

run --max-steps 13 --checkpoint ck1.h5 > part1.log
grep -q "Test set" part1.log
run --resume ck1.h5 --checkpoint ck1.h5 --save resumed1.h5 > part2.log
grep -q "resumed from ck1.h5 at epoch 1, step 13" part2.log || { cat part2.log; echo "FAIL: no resume line"; exit 1; }
same one-go.h5 resumed1.h5 "$np rank(s): stopped at step 13 and resumed == one go"

run --max-steps 26 --checkpoint ck2.h5 --checkpoint-every 7 > part3.log
h5dump -a /step ck2.h5 | grep -q "(0): 26" || { echo "FAIL: last checkpoint is not at step 26"; exit 1; }
run --resume ck2.h5 --save resumed2.h5 > part4.log
grep -q "at epoch 2, step 6 of the epoch (26 steps done)" part4.log || { cat part4.log; echo "FAIL: resume point"; exit 1; }
same one-go.h5 resumed2.h5 "$np rank(s): checkpoints every 7 steps across an epoch end, resumed == one go"

# a longer run, so that the signal arrives while it trains
long=(--train-limit 6400 --loss-log loss.log)
run "${long[@]}" --save long-one-go.h5 > long.log
rm -f loss.log
# mpirun itself in the background (not a function's subshell): it forwards SIGUSR1 to the ranks
"$mpiexec" -np "$np" --oversubscribe "$sn" train "${common[@]}" "${long[@]}" --checkpoint ck3.h5 > sig.log 2>&1 &
pid=$!
for _ in $(seq 600); do [ -f loss.log ] && [ "$(wc -l < loss.log)" -ge 20 ] && break; sleep 0.05; done
kill -USR1 $pid
set +e; wait $pid; st=$?; set -e
[ $st -eq 4 ] || { cat sig.log; echo "FAIL: a run stopped by SIGUSR1 exited $st, expected 4"; exit 1; }
grep -q "stop requested by a signal" sig.log || { cat sig.log; echo "FAIL: no stop message"; exit 1; }
steps=$(h5dump -a /step ck3.h5 | sed -n 's/.*(0): \([0-9]*\).*/\1/p')
[ "$steps" -gt 0 ] && [ "$steps" -lt 400 ] || { echo "FAIL: checkpoint at step '$steps'"; exit 1; }
run "${long[@]}" --resume ck3.h5 --save long-resumed.h5 > sig-resumed.log
same long-one-go.h5 long-resumed.h5 "$np rank(s): SIGUSR1 at step $steps, exit 4, resumed == one go"
