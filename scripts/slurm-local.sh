#!/usr/bin/env bash
# A real single-node Slurm cluster on this host (Debian's slurm-wlm + munge), for tests and trials.
#
#   scripts/slurm-local.sh start [DIR]   configure and start munged, slurmctld, slurmd; wait for the node
#   scripts/slurm-local.sh stop  [DIR]   stop the daemons this script started (by their pid files)
#   scripts/slurm-local.sh status [DIR]
#
# Everything (slurm.conf, state, spool, logs, job completion log) lives in DIR
# (default $BENCHMATRIX_SLURM_DIR or /tmp/benchmatrix-slurm); /etc/slurm is not touched, so the
# clients need `export SLURM_CONF=DIR/slurm.conf`, which `start` prints. Needs root (slurmd
# launches jobs as their users). Accounting (slurmdbd) is not configured: follow jobs with
# squeue / scontrol; finished jobs are also appended to DIR/jobcomp.log (jobcomp/filetxt).
set -euo pipefail

action=${1:-start}
dir=$(realpath -m "${2:-${BENCHMATRIX_SLURM_DIR:-/tmp/benchmatrix-slurm}}")
conf=$dir/slurm.conf
export SLURM_CONF=$conf

die() { echo "slurm-local: $*" >&2; exit 2; }

# A process named by a pid file that runs (a zombie waiting to be reaped does not count).
alive() {
  local state
  [ -f "$1" ] && state=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) && [ "${state:0:1}" != Z ]
}

start_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    return  # a munged already answers (ours from an earlier start, or the host's)
  fi
  [ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  runuser -u munge -- /usr/sbin/munged
  touch "$dir/munged.ours"
  for _ in $(seq 50); do
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "munged did not answer; see /var/log/munge/munged.log"
}

write_conf() {
  local host node gres_types="" gres=""
  host=$(hostname -s)
  # The node line as slurmd measures this machine (CPUs, sockets, cores, RealMemory).
  node=$(slurmd -C | head -1 | sed -E 's/ UpTime=.*//')
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    local gpus
    gpus=$(nvidia-smi -L | wc -l)
    gres_types="GresTypes=gpu"
    gres=" Gres=gpu:$gpus"
    echo "Name=gpu File=/dev/nvidia[0-$((gpus - 1))]" >"$dir/gres.conf"
  fi
  cat >"$conf" <<EOF
# Written by scripts/slurm-local.sh: one node, this host.
ClusterName=benchmatrix
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
# Finished jobs stay visible to scontrol for an hour (no accounting database here).
MinJobAge=3600
KillWait=30
$gres_types
$node NodeAddr=127.0.0.1$gres State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  [ "$(id -u)" = 0 ] || die "needs root (slurmd starts jobs as their users)"
  for bin in slurmctld slurmd munged sbatch; do
    command -v "$bin" >/dev/null 2>&1 || die "$bin not found: apt-get install -y slurm-wlm munge"
  done
  mkdir -p "$dir/state" "$dir/spool"
  start_munge
  if alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid"; then
    echo "slurm-local: already running in $dir"
  else
    write_conf
    alive "$dir/slurmctld.pid" || slurmctld -f "$conf"
    alive "$dir/slurmd.pid" || slurmd -f "$conf"
  fi
  local host state=""
  host=$(hostname -s)
  for _ in $(seq 60); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    case "$state" in
      idle* | mixed* | allocated*) echo "export SLURM_CONF=$conf"; return ;;
      down* | drain*) scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  die "node $host not ready (state '${state}'); see $dir/slurmctld.log and $dir/slurmd.log"
}

stop() {
  local pidfile
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
    if alive "$pidfile"; then
      kill "$(cat "$pidfile")"
      for _ in $(seq 50); do alive "$pidfile" || break; sleep 0.2; done
    fi
  done
  if [ -f "$dir/munged.ours" ] && alive /run/munge/munged.pid; then
    kill "$(cat /run/munge/munged.pid)"
    rm -f "$dir/munged.ours"
  fi
  echo "slurm-local: stopped ($dir)"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) die "usage: $0 start|stop|status [DIR]" ;;
esac
