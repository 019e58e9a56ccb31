# harness.sh: sourced by the Slurm tests (tests/slurm_*.sh):
#   . "$repo/tests/slurm/harness.sh" "$repo"
# skips the test (status 77) unless root can start the daemons, brings up a private
# single-node cluster (short socket paths under /tmp, ports away from a real local Slurm)
# that goes down when the test exits, and puts its commands in the environment.
# job_state JID prints a job's state; job_wait JID TRIES waits (TRIES x 0.1 s at most) for
# it to end and prints the last state seen.
repo=$1
[ "$(id -u)" = 0 ] || { echo "skipped: starting the Slurm daemons needs root"; exit 77; }
export SLURM_BASE=/tmp/shardnet-slurm-test SLURMCTLD_PORT=16817 SLURMD_PORT=16818
bash "$repo/tests/slurm/cluster.sh" down >/dev/null 2>&1 || true
bash "$repo/tests/slurm/cluster.sh" up
trap 'bash "$repo/tests/slurm/cluster.sh" down >/dev/null 2>&1' EXIT
eval "$(bash "$repo/tests/slurm/cluster.sh" env)"

job_state() { scontrol show job -o "$1" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }

job_wait() {
  local s=""
  for _ in $(seq "$2"); do
    s=$(job_state "$1")
    case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
    sleep 0.1
  done
  echo "$s"
}
