#!/usr/bin/env bash
# dist_reduce.sh BUILD_DIR - the library's distributed tests (test_dist) on 2 and 3 ranks:
# exact bucketed sums, rank-order sums bitwise equal to one process's, failures reported on
# every rank, and training whose variables are bitwise identical on all ranks after every step
# and match one process on the whole global batch (custom gradients and overrides included);
# then examples/data_parallel.c (layer-by-layer backward, overlapped reductions) on 2 ranks.
set -eu
. "$(dirname "$0")/dist_lib.bash"
mpi_or_skip "$1"
for n in 2 3; do
  out=$(ranks "$n" "$1/test_dist" 2>&1) || { echo "$out"; echo "test_dist failed on $n ranks"; exit 1; }
  test "$(grep -c 'PASSED  \] 7 test(s)' <<<"$out")" -eq "$n" || { echo "$out"; exit 1; }
  echo "test_dist: all 7 MPI tests passed on each of $n ranks"
done
out=$(ranks 2 "$1/data_parallel" 2>&1) || { echo "$out"; exit 1; }
grep -q '^variables bitwise identical on all 2 ranks: yes$' <<<"$out" || { echo "$out"; exit 1; }
echo "data_parallel: 200 steps on 2 ranks, variables identical"
echo ok
