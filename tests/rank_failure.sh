#!/usr/bin/env bash
# No rank is left hanging:
#  kill  - one rank of a 2-rank run is killed with SIGKILL: every process must be gone
#          within LIMIT seconds and the output must name the rank;
#  stall - rank 1 stops making progress before step 40 (SHARDNET_FAULT, as a hung rank
#          would): rank 0's stall watchdog (--stall-timeout 3) must end the job within
#          LIMIT seconds, naming rank 1 as the one that did not reach the step;
#  stop  - one rank is frozen with SIGSTOP at a random moment: the job must end within
#          LIMIT seconds with a stall message (naming the rank if it froze outside the
#          allreduce).
#   rank_failure.sh SHARDNET MPIEXEC DATA WORK_DIR kill|stall|stop [LIMIT=30]
set -uo pipefail
sn=$1 mpiexec=$2 data=$3 work=$4 mode=$5 limit=${6:-30}
rm -rf "$work" && mkdir -p "$work" && cd "$work" && work=$(pwd -P)
# This job's processes: shardnet train started in $work (other tests may run alongside).
ours() { for p in $(pgrep -f "$sn train"); do [ "$(readlink "/proc/$p/cwd")" = "$work" ] && echo "$p"; done; }
[ "$mode" != stall ] || export SHARDNET_FAULT=stall:1:40
"$mpiexec" -np 2 --oversubscribe "$sn" train --data "$data" --epochs 50 --threads 1 --progress none \
    --train-limit 6400 --test-limit 64 --loss-log loss.log --stall-timeout 3 > run.log 2>&1 &
mp=$!
for _ in $(seq 600); do [ -f loss.log ] && [ "$(wc -l < loss.log)" -ge 10 ] && break; sleep 0.05; done
[ "$mode" != stall ] || sleep 1   # past step 40: the injected stall has begun
ranks=$(ours | while read -r p; do [ "$p" != "$mp" ] && echo "$p"; done)
victim=$(for p in $ranks; do tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q '^OMPI_COMM_WORLD_RANK=1$' && echo "$p"; done | head -1)
[ -n "$victim" ] || { echo "FAIL: rank 1 not found among: $ranks"; kill -9 $mp; exit 1; }
t0=$(date +%s.%N)
case "$mode" in
  kill)  kill -KILL "$victim"; want="rank 1" ;;
  stall) want="rank 1 did not reach the gradient allreduce of step 40" ;;
  stop)  kill -STOP "$victim"; want="stall: " ;;
  *) echo "mode must be kill, stall or stop"; exit 2 ;;
esac
ended=0
for _ in $(seq $((limit * 20))); do kill -0 $mp 2>/dev/null || { ended=1; break; }; sleep 0.05; done
t1=$(date +%s.%N)
kill -CONT "$victim" 2>/dev/null
wait $mp; st=$?
left=$(ours | wc -l)
[ $ended = 1 ] || { kill -9 $mp $ranks 2>/dev/null; cat run.log; echo "FAIL: job still running after $limit s"; exit 1; }
[ "$left" -eq 0 ] || { kill -9 $(ours) 2>/dev/null; echo "FAIL: $left rank process(es) left behind"; exit 1; }
[ $st -ne 0 ] || { cat run.log; echo "FAIL: the job exited 0"; exit 1; }
grep -q "$want" run.log || { cat run.log; echo "FAIL: the output does not say '$want'"; exit 1; }
printf 'ok: %s: every rank gone %.1f s after rank 1 was hit, exit %d, output names it:\n' "$mode" \
  "$(awk -v a="$t0" -v b="$t1" "BEGIN { print b - a }")" $st
grep -m1 "$want" run.log
