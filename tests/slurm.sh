#!/usr/bin/env bash
# slurm.sh — `make test-slurm`: the script of `normbench sweep --emit slurm` against a real
# one-node Slurm (Debian's slurm-wlm and munge), started here with a generated slurm.conf for
# this machine and stopped at the end (only the daemons this script started, by pid).
#
# A 2-scheme x 2-seed grid of configs/tiny/tiny.yaml goes through `sbatch`: every array task
# must finish its run, the report job must run after them; then one task is cut off mid-run
# (scontrol requeue) and must resume its run from the checkpoint, not start over. When Slurm
# cannot start on this machine (no packages, not root, daemons that do not come up), the
# script prints why and "SKIPPED" and exits 0 — never a silent pass. Any failed check exits 1.
# usage: tests/slurm.sh [NORMBENCH_BINARY]
set -uo pipefail
cd "$(dirname "$0")/.."
NB=$(realpath "${1:-build/normbench}")

skip() { echo "test-slurm: SKIPPED: $*"; exit 0; }
fail() { echo "test-slurm: FAILED: $*"; show_logs; exit 1; }

for cmd in munged mungekey slurmctld slurmd sbatch squeue scontrol sinfo; do
    command -v "$cmd" >/dev/null 2>&1 || skip "no $cmd (scripts/install-deps installs slurm-wlm and munge)"
done
[ "$(id -u)" = 0 ] || skip "starting slurmd needs root (CI runs as root)"
[ -x "$NB" ] || fail "no binary $NB"

T=$(mktemp -d /tmp/nbslurm-XXXXXX)
chmod 755 "$T"
export SLURM_CONF=$T/slurm.conf
export OMP_WAIT_POLICY=passive # the jobs inherit it: tasks side by side on 2 cores, no spinning
pids=()
show_logs() {
    for f in "$T"/slurmctld.log "$T"/slurmd.log "$T"/munged.log "$T"/runs/tiny/slurm/*.out; do
        [ -f "$f" ] && { echo "---- $f (last lines)"; tail -n 15 "$f"; }
    done
}
# pids of the processes that hold a file under $T open or run in it: the job steps of our
# Slurm (slurmstepd, srun, normbench), which outlive slurmd when a test fails mid-job
own_processes() {
    local p
    for p in /proc/[0-9]*; do
        { [ "$(readlink "$p/cwd" 2>/dev/null)" = "$T" ] ||
          ls -l "$p/fd" 2>/dev/null | grep -q "$T/"; } && echo "${p#/proc/}"
    done
}
cleanup() {
    if [ -s "$T/slurmctld.pid" ]; then # cancel what is left, give it a moment to end
        squeue -h -o %A 2>/dev/null | xargs -r scancel 2>/dev/null
        for _ in $(seq 20); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.5; done
    fi
    for pidfile in "$T"/slurmd.pid "$T"/slurmctld.pid "$T"/munged.pid; do
        [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
    done
    sleep 1
    local left
    left=$(own_processes | grep -vx "$$")
    [ -n "$left" ] && kill -9 $left 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# ---- munge: a key and a socket of our own ------------------------------------------------
mungekey --create --keyfile="$T/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$T/munge.key"
mkdir -p "$T/munge"
munged --force --key-file="$T/munge.key" --socket="$T/munge.sock" --pid-file="$T/munged.pid" \
    --log-file="$T/munged.log" --seed-file="$T/munge.seed" >/dev/null 2>&1 ||
    skip "munged does not start: $(tail -n 2 "$T/munged.log" 2>/dev/null)"
for _ in $(seq 50); do [ -S "$T/munge.sock" ] && break; sleep 0.1; done
munge -S "$T/munge.sock" -n | unmunge -S "$T/munge.sock" >/dev/null 2>&1 ||
    skip "munge does not answer on $T/munge.sock"

# ---- slurm.conf for this machine: one node, one partition ---------------------------------
cpus=$(nproc)
mem=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
port=$((20000 + RANDOM % 20000))
mkdir -p "$T/state" "$T/spool"
cat >"$SLURM_CONF" <<EOF
ClusterName=nbtest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge.sock
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=60
KillWait=10
NodeName=nbnode NodeAddr=127.0.0.1 NodeHostname=$(hostname -s) CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=nbtest Nodes=nbnode Default=YES MaxTime=INFINITE State=UP
EOF

t_start=$(date +%s)
slurmctld -f "$SLURM_CONF" >/dev/null 2>&1 || skip "slurmctld does not start: $(tail -n 3 "$T/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" -N nbnode >/dev/null 2>&1 || skip "slurmd does not start: $(tail -n 3 "$T/slurmd.log" 2>/dev/null)"
up=""
for _ in $(seq 60); do
    state=$(sinfo -h -n nbnode -o %t 2>/dev/null)
    case "$state" in idle*|mix*|alloc*) up=1; break ;; esac
    sleep 0.5
done
[ -n "$up" ] || skip "the node did not come up (state '${state:-none}'): $(tail -n 3 "$T/slurmd.log" 2>/dev/null)"
echo "test-slurm: Slurm $(sinfo -V | awk '{print $2}') up in $(( $(date +%s) - t_start )) s: node nbnode, $cpus CPUs"

# ---- the grid through sbatch ---------------------------------------------------------------
# waits until no job of ours is left in the queue (at most $1 seconds)
wait_queue_empty() {
    for _ in $(seq $(( $1 * 2 ))); do
        [ -z "$(squeue -h -o %i 2>/dev/null)" ] && return 0
        sleep 0.5
    done
    return 1
}
status_of() { h5dump -a status "$1" 2>/dev/null | sed -n 's/.*(0): "\(.*\)"/\1/p'; }

GRID=(--set 'scheme=[pre_ln,lns]' --set 'seed=[1,2]' --set backend.threads=1 --set "output.dir=$T/runs")
"$NB" sweep configs/tiny/tiny.yaml "${GRID[@]}" --emit slurm --time 10 >"$T/job.sh" ||
    fail "sweep --emit slurm failed"
t0=$(date +%s)
jid=$(sbatch --parsable "$T/job.sh") || fail "sbatch refused the script"
echo "test-slurm: submitted array job $jid"
wait_queue_empty 180 || fail "jobs still queued after 180 s: $(squeue -h)"
echo "test-slurm: the array and the report job ran in $(( $(date +%s) - t0 )) s"
for run in pre_ln-s1 pre_ln-s2 lns-s1 lns-s2; do
    st=$(status_of "$T/runs/tiny/$run.h5")
    [ "$st" = finished ] || fail "$run: status '$st'"
done
[ -s "$T/runs/tiny/report/summary.md" ] || fail "no report/summary.md: the report job did not run"
ls "$T"/runs/tiny/slurm/nb-tiny-report-*.out >/dev/null 2>&1 || fail "no log of the report job"
grep -q "report: " "$T"/runs/tiny/slurm/nb-tiny-report-*.out || fail "the report job did not finish"
# the report ran after every task: its summary is newer than every run file
for f in "$T"/runs/tiny/*-s?.h5; do
    [ "$T/runs/tiny/report/summary.md" -nt "$f" ] || [ ! "$f" -nt "$T/runs/tiny/report/summary.md" ] ||
        fail "the report ran before $f was finished"
done
echo "test-slurm: 4 runs finished, report/summary.md written after them"

# ---- a requeued task resumes its run ---------------------------------------------------------
# A longer one-run grid, a checkpoint every 10 steps; once the checkpoint exists the task is
# requeued (Slurm sends SIGTERM, then kills); its second start must resume (the log says
# "resume"), and the run must finish.
LONG=(--set scheme=pre_ln --set seed=7 --set backend.threads=1 --set train.steps=600 --set train.checkpoint_every=10
      --set eval.every=0 --set metrics.every=0 --set "output.dir=$T/runs2")
"$NB" sweep configs/tiny/tiny.yaml "${LONG[@]}" --emit slurm >"$T/job2.sh" || fail "emit 2"
jid=$(sbatch --parsable "$T/job2.sh") || fail "sbatch refused the second script"
ck="$T/runs2/tiny/pre_ln-s7.ckpt.h5"
for _ in $(seq 240); do [ -e "$ck" ] && break; sleep 0.25; done
[ -e "$ck" ] || fail "the long task never wrote a checkpoint"
scontrol requeue "${jid}_0" || fail "scontrol requeue ${jid}_0"
# Slurm holds a requeued job back for a while (BeginTime); let it start again sooner. Not
# within the second of the requeue: slurmd rejects a launch whose credential is not newer
# than the revocation of the killed instance's ("Job credential revoked").
t_requeue=$(date +%s)
for _ in $(seq 120); do
    [ "$(squeue -h -j "${jid}_0" -o %T 2>/dev/null)" = PENDING ] && break
    sleep 0.25
done
sleep 3
scontrol update JobId="${jid}_0" StartTime=now >/dev/null 2>&1 ||
    echo "test-slurm: could not advance the requeued task's start; waiting for Slurm's own delay"
echo "test-slurm: requeued task ${jid}_0 mid-run"
wait_queue_empty 180 || fail "requeued job still queued after 180 s: $(squeue -h)"
log=$(ls "$T"/runs2/tiny/slurm/nb-tiny-"${jid}"_0.out)
[ "$(status_of "$T/runs2/tiny/pre_ln-s7.h5")" = finished ] || fail "the requeued run did not finish"
grep -q "pre_ln-s7.h5 *resume" "$log" || fail "the requeued task did not resume its run (log $log)"
resumed=$(h5dump -a resumed_at "$T/runs2/tiny/pre_ln-s7.h5" 2>/dev/null | sed -n 's/.*(0): "\(.*\)"/\1/p')
[ -n "$resumed" ] || fail "the run file does not record a resume (resumed_at)"
echo "test-slurm: the requeued task resumed its run from the checkpoint and finished ($(( $(date +%s) - t_requeue )) s after the requeue)"
# ---- one run across 2 ranks started by srun (PMIx), as a --gpus-per-run task runs it ---------
if srun --mpi=list 2>&1 | grep -q pmix; then
    sbatch --wait --ntasks=2 --output="$T/srun2.out" --wrap "srun --mpi=pmix --kill-on-bad-exit=1 \
        '$NB' train configs/tiny/tiny.yaml --set train.grad_accum=2 --set backend.threads=1 \
        --set output.dir='$T/runs3' --quiet" >/dev/null || { cat "$T/srun2.out"; fail "2-rank srun job failed"; }
    r3="$T/runs3/tiny/pre_ln-s1.h5"
    [ "$(status_of "$r3")" = finished ] || { cat "$T/srun2.out"; fail "2-rank srun run did not finish"; }
    ranks=$(h5dump -a ranks "$r3" 2>/dev/null | sed -n 's/.*(0): \([0-9]*\).*/\1/p')
    [ "$ranks" = 2 ] || fail "2-rank srun run file says ranks '$ranks'"
    [ "$(ls "$T/runs3/tiny" | grep -c '\.h5$')" = 2 ] || fail "2-rank srun run: files $(ls "$T/runs3/tiny")"
    echo "test-slurm: srun --mpi=pmix -n 2: one run on 2 ranks finished (run file: ranks = 2)"
else
    echo "test-slurm: srun has no pmix plugin here: the 2-rank srun check did not run"
fi
echo "test-slurm: passed in $(( $(date +%s) - t_start )) s"
