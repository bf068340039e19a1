#!/usr/bin/env bash
# dist_failure.sh BUILD_DIR - a rank that fails stops the job with a message on every rank
# instead of a hang: killed (mpirun ends the job; the survivor says why), stopped (the
# watchdog of --dist-timeout aborts the job), bad data on one rank (all ranks agree to stop).
# The checkpoint written before a kill stays loadable and --resume continues from it.
set -eu
. "$(dirname "$0")/dist_lib.bash"
mpi_or_skip "$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
long=(--limit 5000 --batch 100 --epochs 30 --quiet --seed 3 --distributed --save "$dir/k.ckpt")
export DIST_FAILURE_JOB="$$.$RANDOM" # tells our ranks from those of tests running beside us

# start_long ARGS...: the long run in the background; waits for its first checkpoint and sets
# $job (the subshell) and $rank1 (the pid of rank 1)
start_long() {
  rm -f "$dir/k.ckpt"
  (if ranks 2 -x DIST_FAILURE_JOB "$bin" train "${long[@]}" "$@" >"$dir/out" 2>&1; then echo "exit 0" >>"$dir/out"
   else echo "exit $?" >>"$dir/out"; fi) &
  job=$!
  for _ in $(seq 300); do test -s "$dir/k.ckpt" && break; sleep 0.1; done
  test -s "$dir/k.ckpt"
  rank1=""
  for p in $(pgrep -f "$bin train" || true); do
    env=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null || true)
    grep -qx "DIST_FAILURE_JOB=$DIST_FAILURE_JOB" <<<"$env" && grep -qx 'OMPI_COMM_WORLD_RANK=1' <<<"$env" && rank1=$p
  done
  test -n "$rank1"
}

# 1. rank 1 killed after the first checkpoint: the job ends within seconds, with messages
start_long
kill -9 "$rank1"
wait "$job"
cat "$dir/out"
grep -q 'exited on signal 9' "$dir/out"                                  # mpirun names the rank
grep -q 'rank 0 of 2: stopped by the MPI launcher' "$dir/out"             # the survivor says why
grep -qE '^exit [1-9]' "$dir/out"
# the checkpoint is whole, and a distributed --resume continues from it (from whichever epoch
# the kill came after: a fast machine gets further before it lands)
ranks 2 "$bin" train "${long[@]}" --resume "$dir/k.ckpt" --stop-after 30 >"$dir/resumed"
epoch=$(sed -nE 's/^resumed from .* after epoch ([0-9]+)$/\1/p' "$dir/resumed")
test -n "$epoch" && test "$epoch" -ge 1 && test "$epoch" -lt 30
grep -q "^epoch $((epoch + 1)):" "$dir/resumed"

# 2. rank 1 stopped (SIGSTOP): no death for mpirun to see; the watchdog ends the job
start_long --dist-timeout 3
kill -STOP "$rank1"
wait "$job"
cat "$dir/out"
grep -qE 'rank 0 of 2: .* has waited 3 s for the other ranks \(timeout 3 s\)' "$dir/out"
grep -qE '^exit [1-9]' "$dir/out"

# 3. bad data on rank 1 only: every rank stops with a message, nothing waits
mkdir "$dir/bad"
for f in /usr/share/datasets/fashion-mnist/*; do ln -s "$f" "$dir/bad/"; done
rm "$dir/bad/train-images-idx3-ubyte.gz"
zcat /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz | head -c 100000 | gzip >"$dir/bad/train-images-idx3-ubyte.gz"
if timeout -k 5 60 mpirun --allow-run-as-root --oversubscribe -np 1 "$bin" train --distributed --limit 500 \
  : -np 1 "$bin" train --distributed --limit 500 --data "$dir/bad" >"$dir/bad.out" 2>&1; then exit 1; fi
cat "$dir/bad.out"
grep -q 'rank 0 of 2: cg_dist_agree: rank 1 of 2 failed during loading the data' "$dir/bad.out"
grep -q 'rank 1 of 2: cg_mnist_load: .*the file is truncated' "$dir/bad.out"
echo ok
