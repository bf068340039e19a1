# dist_lib.bash - what the tests/dist_*.sh scripts share: skipping cleanly (exit 0 with a
# message) where Open MPI or an MPI-enabled cgrad is missing, and running N ranks with a time
# limit so that a hang fails the test instead of stalling the suite. Sourced, not run.

skip() { echo "SKIPPED: $*"; exit 0; }

# mpi_or_skip BUILD_DIR: sets $bin (the cgrad tool); skips without mpirun or MPI in cgrad.
mpi_or_skip() {
  bin="$1/cgrad"
  command -v mpirun >/dev/null || skip "mpirun not found (install openmpi-bin: scripts/install-deps)"
  local out
  out=$("$bin" train --distributed --limit 10 --batch 10 --epochs 1 --quiet 2>&1) || true
  case "$out" in *"built without MPI"*) skip "cgrad was built without MPI (CGRAD_MPI=OFF)" ;; esac
  export OPENBLAS_NUM_THREADS=1 CGRAD_NUM_THREADS=1 # one thread per rank: ranks share the cores
  # containers often forbid the cross-process reads (CMA) Open MPI's shared memory uses for
  # big messages; plain copies work everywhere
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  # ranks waiting in MPI yield the core: tests run side by side on few cores, and ranks that
  # spin while waiting take it from the rank they wait for
  export OMPI_MCA_mpi_yield_when_idle=1
  # under AddressSanitizer (scripts/check-sanitizers): full stacks at malloc, and the memory
  # Open MPI never frees left out of the leak report (scripts/lsan.supp)
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/lsan.supp}"
}

# ranks N ARGS...: ARGS under `mpirun -np N`, one thread per rank, killed after 180 s.
ranks() {
  local n="$1"
  shift
  timeout -k 5 180 mpirun --allow-run-as-root --oversubscribe -np "$n" -x OPENBLAS_NUM_THREADS -x CGRAD_NUM_THREADS "$@"
}

# same_columns A.csv B.csv COLUMNS: the given CSV columns of two logs are identical.
same_columns() { diff <(cut -d, -f"$3" "$1") <(cut -d, -f"$3" "$2"); }

# close_columns A.csv B.csv TOL: loss and accuracy columns (2-5) agree within TOL.
close_columns() {
  paste -d, "$1" "$2" | awk -F, -v tol="$3" 'NR > 1 {
    for (c = 2; c <= 5; c++) { d = $c - $(c + 7); if (d < 0) d = -d; if (d > tol) { print "column " c ": " $c " vs " $(c + 7); exit 1 } } }'
}
