#!/usr/bin/env bash
# dist-signal.sh — for tests/test_dist.c: starts `mpirun -np 2 normbench train ...`, waits
# until the run's checkpoint exists (the ranks are past step checkpoint_every), then sends a
# signal: `kill` sends SIGKILL to rank 1 alone (a rank that dies), `int` sends SIGINT to
# mpirun (Ctrl-C). Prints "rc=<mpirun's exit status> seconds=<from the signal to mpirun's
# exit>" on its last line; the output of mpirun goes to stderr.
# usage: tests/dist-signal.sh kill|int CHECKPOINT NORMBENCH_ARGS...
set -u
mode=$1 ckpt=$2
shift 2
mpirun --allow-run-as-root --oversubscribe -np 2 "$@" >&2 &
mp=$!
for _ in $(seq 1 600); do # 60 s at most
    [ -e "$ckpt" ] && break
    kill -0 "$mp" 2>/dev/null || break
    sleep 0.1
done
if [ "$mode" = kill ]; then
    rank1=""
    for p in $(pgrep -P "$mp"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && rank1=$p
    done
    [ -n "$rank1" ] || { echo "dist-signal: rank 1 not found under mpirun $mp" >&2; kill "$mp"; wait "$mp"; echo "rc=-1 seconds=-1"; exit 1; }
    t0=$(date +%s.%N)
    kill -KILL "$rank1"
else
    t0=$(date +%s.%N)
    kill -INT "$mp"
fi
wait "$mp"
rc=$?
t1=$(date +%s.%N)
echo "rc=$rc seconds=$(awk "BEGIN { print $t1 - $t0 }")"
