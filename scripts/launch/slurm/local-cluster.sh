#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for trying the job scripts and
# for the test in tests/tests/slurm.rs. Everything it makes lives in one state
# directory (munge key and socket, slurm.conf, controller state, spool, logs);
# nothing is written to /etc, and no system service is touched.
#
#   scripts/launch/slurm/local-cluster.sh install        # apt-get install slurm-wlm munge (root)
#   scripts/launch/slurm/local-cluster.sh start DIR      # munged, slurmctld, slurmd; prints the SLURM_CONF to export
#   export SLURM_CONF=DIR/slurm.conf              # then sbatch, squeue, sinfo, scancel use it
#   scripts/launch/slurm/local-cluster.sh stop DIR       # cancels the jobs, stops the daemons it started
#
# Needs root (slurmd runs jobs as their submitting user) and Debian's
# slurm-wlm and munge packages. Works without systemd: the daemons run with
# ProctrackType=proctrack/linuxproc and TaskPlugin=task/none.
#
# Environment: AAA_CLUSTER_CPUS (CPUs the node announces, default 16: more than
# the machine has, so that a learner and several actors fit at once on a small
# box), AAA_CLUSTER_GPUS=1 (the node announces one gres `gpu` with /dev/null
# as its device file: for trying --gres requests on a machine without a GPU;
# default 0), AAA_CLUSTER_PORT (first port to try for slurmctld, default
# 16817).
set -euo pipefail

die() { echo "local-cluster.sh: $*" >&2; exit 1; }

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# Why a cluster cannot be started here, or nothing when it can.
why_not() {
  [ "$(id -u)" = 0 ] || { echo "not root (slurmd and munged need root)"; return; }
  local missing=()
  for tool in munged slurmctld slurmd sbatch squeue sinfo scancel scontrol; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || echo "missing ${missing[*]} (install: apt-get install slurm-wlm munge)"
}

install() {
  [ -z "$(why_not)" ] && { echo "slurm-wlm and munge are installed"; return 0; }
  [ "$(id -u)" = 0 ] || die "$(why_not)"
  command -v apt-get >/dev/null || die "no apt-get: install SLURM and munge by hand"
  echo "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null || die "apt-get failed"
  }
  [ -z "$(why_not)" ] || die "$(why_not)"
}

port_free() {
  if command -v ss >/dev/null; then
    [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# Two free consecutive ports from $1 on.
free_ports() {
  local p=$1
  for ((i = 0; i < 200; i++, p += 2)); do
    if port_free "$p" && port_free "$((p + 1))"; then echo "$p"; return; fi
  done
  die "no two free ports from $1 on"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -s "$1" ] && tr -dc 0-9 <"$1" || true; }

start() {
  local dir=$1
  [ -z "$(why_not)" ] || die "cannot start a cluster: $(why_not)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -e "$dir/slurmctld.pid" ] && alive "$(pid_of "$dir/slurmctld.pid")" &&
    die "a cluster already runs from $dir (stop it first)"
  chmod 700 "$dir"
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  chmod 700 "$dir/munge"

  # munge: a private key and socket, so that no system munged is needed or disturbed.
  local key="$dir/munge/munge.key" socket="$dir/munge/munge.socket"
  [ -s "$key" ] || { head -c 1024 /dev/urandom >"$key"; chmod 400 "$key"; }
  munged --force --key-file="$key" --socket="$socket" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" ||
    die "munged did not start: $(tail -3 "$dir/munge/munged.log" 2>/dev/null)"

  local host cpus gpus port mem gres=""
  host="$(hostname -s)"
  cpus="${AAA_CLUSTER_CPUS:-16}"
  gpus="${AAA_CLUSTER_GPUS:-0}"
  [[ "$gpus" =~ ^[01]$ ]] || die "AAA_CLUSTER_GPUS must be 0 or 1"
  if ((gpus > 0)); then
    gres=" Gres=gpu:$gpus"
    echo "NodeName=$host Name=gpu Count=$gpus File=/dev/null AutoDetect=off" >"$dir/gres.conf"
  fi
  port="$(free_ports "${AAA_CLUSTER_PORT:-16817}")"
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024))
  cat >"$dir/slurm.conf" <<EOF
# One-node test cluster written by scripts/launch/slurm/local-cluster.sh.
ClusterName=aaa-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=600
$( ((gpus > 0)) && echo "GresTypes=gpu")
SchedulerParameters=sched_interval=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem$gres State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -i -f "$SLURM_CONF" ||
    die "slurmctld did not start: $(tail -5 "$dir/slurmctld.log" 2>/dev/null)"
  slurmd -f "$SLURM_CONF" -N "$host" ||
    die "slurmd did not start: $(tail -5 "$dir/slurmd.log" 2>/dev/null)"
  local state=""
  for ((i = 0; i < 60; i++)); do
    state="$(sinfo -h -N -o %T 2>/dev/null | head -1)"
    case "$state" in idle | mixed | allocated) break ;; esac
    sleep 0.5
  done
  case "$state" in
    idle | mixed | allocated) ;;
    *) echo "node state: ${state:-none}" >&2
       tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
       stop "$dir" >/dev/null 2>&1 || true
       die "the node did not come up" ;;
  esac
  echo "one-node SLURM cluster up: node $host, $cpus CPUs, $gpus GPUs, partition debug, ports $port-$((port + 1))"
  echo "export SLURM_CONF=$SLURM_CONF"
}

# Job processes of this cluster: those `scontrol listpids` names (while slurmd
# runs), and the slurmstepd processes listening on a socket in its spool dir.
job_pids() {
  local dir=$1
  scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}' || true
  if command -v ss >/dev/null; then
    ss -Hxlp 2>/dev/null | grep -F " $dir/spool/" | grep -o 'pid=[0-9]*' | cut -d= -f2 || true
  fi
}

stop() {
  local dir=$1
  [ -d "$dir" ] || die "no state directory $dir"
  dir="$(cd "$dir" && pwd)"
  export SLURM_CONF="$dir/slurm.conf"
  local ctld slurmd munge
  ctld="$(pid_of "$dir/slurmctld.pid")"
  slurmd="$(pid_of "$dir/slurmd.pid")"
  munge="$(pid_of "$dir/munge/munged.pid")"
  if alive "$ctld"; then
    local jobs
    jobs="$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')"
    if [ -n "${jobs// /}" ]; then
      echo "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 90; i++)); do
        [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
        sleep 0.5
      done
    fi
  fi
  # Job processes that outlived the cancel (or whose controller was gone).
  local left
  left="$(job_pids "$dir" | sort -u | tr '\n' ' ')"
  if [ -n "${left// /}" ]; then
    echo "killing leftover job processes: $left"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
  fi
  for pid in $slurmd $ctld; do alive "$pid" && kill -TERM "$pid"; done
  for ((i = 0; i < 40; i++)); do
    alive "$slurmd" || alive "$ctld" || break
    sleep 0.25
  done
  for pid in $slurmd $ctld; do alive "$pid" && kill -KILL "$pid"; done
  if alive "$munge"; then
    kill -TERM "$munge"
    for ((i = 0; i < 20; i++)); do alive "$munge" || break; sleep 0.25; done
    alive "$munge" && kill -KILL "$munge"
  fi
  rm -f "$dir/slurmctld.pid" "$dir/slurmd.pid" "$dir/munge/munged.pid"
  echo "cluster in $dir stopped"
}

cmd="${1:-}"
case "$cmd" in
  install) install ;;
  check) reason="$(why_not)"; [ -z "$reason" ] || { echo "$reason"; exit 1; } ;;
  start) [ $# = 2 ] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [ $# = 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
