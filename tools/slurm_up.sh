#!/usr/bin/env bash
# Starts a single-node Slurm on this machine (localhost): installs Debian's
# slurm-wlm and munge if missing, writes a minimal slurm.conf for one node
# with all its cores, starts munged, slurmctld and slurmd, and waits until the
# node is idle. Needs root. Idempotent: a running cluster is left as it is.
#
#   tools/slurm_up.sh          # start (or check) the cluster
#   tools/slurm_up.sh down     # stop the daemons this script started
set -euo pipefail
state=/var/tmp/warpgrad-slurm
conf=/etc/slurm/slurm.conf

if [ "${1:-}" = down ]; then
    # The daemons remove their own pid files as they shut down (a few seconds).
    for d in slurmd slurmctld munged; do
        [ -f "$state/$d.pid" ] && kill "$(cat "$state/$d.pid")" 2>/dev/null || true
    done
    rm -f "$state/munged.pid"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# Already up: the controller answers and the node takes jobs (idle or busy).
if scontrol ping 2>/dev/null | grep -q UP \
    && sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)$'; then
    exit 0
fi

mkdir -p "$state" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

# munge: a key, then the daemon (as the munge user when there is one).
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
if id munge >/dev/null 2>&1; then
    chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
fi
if ! munge -n >/dev/null 2>&1; then
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- munged
    else
        munged --force
    fi
    pgrep -n -x munged >"$state/munged.pid"
fi
munge -n | unmunge >/dev/null

# One node, one partition; no cgroups or accounting (a container may not
# allow them), so jobs are tracked by their process tree.
cat >"$conf" <<CONF
ClusterName=warpgrad
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
KillWait=30
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
        echo "slurm: node $host idle ($cpus CPUs)" >&2
        exit 0
    fi
    sleep 1
done
echo "slurm: the node did not come up; sinfo says:" >&2
sinfo >&2 || true
tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
