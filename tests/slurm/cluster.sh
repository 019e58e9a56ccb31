#!/usr/bin/env bash
# A real single-node Slurm cluster for the job-script tests: munged + slurmctld + slurmd
# as root, no systemd or cgroups, everything under $SLURM_BASE (default /tmp/shardnet-slurm).
#   cluster.sh up | down | env
# SLURMCTLD_PORT / SLURMD_PORT choose the ports (default 6817 / 6818).
# `up` installs slurm-wlm and munge if missing, writes slurm.conf for this host
# (NodeAddr 127.0.0.1, MpiDefault=pmix: Debian's Open MPI speaks PMIx only; requeued jobs
# may restart after 5 s), starts the daemons and waits until the node is idle. `env`
# prints the export that sbatch/squeue/scontrol need.
set -euo pipefail
base=${SLURM_BASE:-/tmp/shardnet-slurm}
etc=$base/etc run=$base/run log=$base/log
conf=$etc/slurm.conf sock=$run/munge.sock
host=$(hostname -s)
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() { alive "$1" || return 0; local p; p=$(cat "$1"); kill "$p"
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; rm -f "$1"; }

case "${1:-}" in
env) echo "export SLURM_CONF=$conf" ;;
down)
  export SLURM_CONF=$conf
  if alive "$run/slurmctld.pid"; then scancel --full $(squeue -h -o %i) 2>/dev/null || true; fi
  stop "$run/slurmd.pid"; stop "$run/slurmctld.pid"; stop "$run/munged.pid" ;;
up)
  [ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root" >&2; exit 1; }
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
  fi
  mkdir -p "$etc" "$run" "$log" "$base/munge" "$base/state/ctld" "$base/state/d"
  chmod 0700 "$base/munge"
  if ! alive "$run/munged.pid"; then
    [ -s "$base/munge/key" ] || dd if=/dev/urandom of="$base/munge/key" bs=1024 count=1 status=none
    chmod 0400 "$base/munge/key"
    rm -f "$sock" "$sock.lock"
    munged --key-file="$base/munge/key" --socket="$sock" --pid-file="$run/munged.pid" \
           --log-file="$log/munged.log" --seed-file="$base/munge/seed"
    for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  fi
  node=$(slurmd -C | head -1 | sed -e "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/" \
         -e 's/RealMemory=\([0-9]*\)/RealMemory=\1/' | awk '{for (i=1;i<=NF;i++) if ($i ~ /^RealMemory=/) { split($i,a,"="); $i="RealMemory=" int(a[2]*0.9) } print}')
  cat > "$conf" <<CONF
ClusterName=shardnet
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock,cred_expire=5
StateSaveLocation=$base/state/ctld
SlurmdSpoolDir=$base/state/d
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=$log/slurmctld.log
SlurmdLogFile=$log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
MailProg=/bin/true
KillWait=5
MinJobAge=300
JobRequeue=1
EnforcePartLimits=ALL
$node State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$conf
  alive "$run/slurmctld.pid" || slurmctld -c
  for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
  alive "$run/slurmd.pid" || slurmd -N "$host"
  for _ in $(seq 300); do
    case "$(sinfo -h -n "$host" -o %T 2>/dev/null)" in idle|mixed|allocated) exit 0 ;; esac
    sleep 0.2
  done
  echo "cluster.sh: node $host did not become idle (see $log)" >&2; exit 1 ;;
*) sed -n '2,8p' "$0"; exit 2 ;;
esac
