#!/usr/bin/env bash
# crash_safety.sh BUILD_DIR - kills a process that saves checkpoints in a loop (crash_saver)
# with SIGKILL at random moments, 50 times, each run resuming from the file the last one
# left. After every kill the checkpoint on disk must load whole, hold one step throughout
# (variables, optimizer slots, step count, metadata) and that step must be the one the saver
# last reported or the next (the save it was in when killed): never a broken or mixed file.
# The temporary file a kill leaves mid-save is removed by the next save that succeeds.
# CRASH_RUNS and CRASH_SEED override the number of runs and the random seed.
set -eu
saver="$1/crash_saver"
dir=$(mktemp -d "$1/crash_safety.XXXXXX")
trap 'rm -rf "$dir"' EXIT
ckpt="$dir/model.safetensors"
runs=${CRASH_RUNS:-50}
seed=${CRASH_SEED:-$(date +%s)}
RANDOM=$seed
echo "crash_safety: $runs runs, seed $seed"

last=0      # the step known to be on disk
mid_save=0  # kills that left a half-written temporary file behind
stale=()    # those files, which the next save must remove
removed=0   # how many a later save did remove
for ((run = 1; run <= runs; run++)); do
  "$saver" save "$ckpt" >"$dir/log" 2>"$dir/err" &
  pid=$!
  sleep "$(printf '0.%03d' $((RANDOM % 200)))"
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  if [ -s "$dir/err" ]; then
    echo "run $run: the saver failed before it was killed:"; cat "$dir/err"; exit 1
  fi
  reported=$(tail -n 1 "$dir/log")
  if [ -n "$reported" ]; then # this run finished a save: earlier kills' files are gone
    for f in "${stale[@]}"; do
      if [ -e "$f" ]; then echo "run $run: a save left $f, which a killed save made"; exit 1; fi
      removed=$((removed + 1))
    done
    stale=()
  fi
  reported=${reported:-$last} # killed before this run finished a save
  temps=("$ckpt".tmp.*)
  if [ -e "${temps[0]}" ]; then # the killed save's temporary file (and older ones, unsaved)
    mid_save=$((mid_save + 1))
    stale=("${temps[@]}")
  fi
  if [ ! -e "$ckpt" ]; then
    [ "$last" -eq 0 ] && [ "$reported" -eq 0 ] && continue # killed before the first save
    echo "run $run: the checkpoint is gone (last step $last)"; exit 1
  fi
  if ! got=$("$saver" check "$ckpt"); then
    echo "run $run: the checkpoint on disk is broken (saver reported step $reported)"; exit 1
  fi
  if [ "$got" -ne "$reported" ] && [ "$got" -ne $((reported + 1)) ]; then
    echo "run $run: the checkpoint holds step $got, the saver reported $reported"; exit 1
  fi
  if [ "$got" -lt "$last" ]; then
    echo "run $run: the checkpoint went back from step $last to $got"; exit 1
  fi
  last=$got
done
[ "$last" -gt 0 ] || { echo "no checkpoint was ever saved"; exit 1; }
echo "crash_safety: $runs kills, $mid_save in the middle of a save ($removed of their files removed by a later save), final step $last"

# the check is not vacuous: a cut or corrupted file is refused
head -c $(($(stat -c %s "$ckpt") / 2)) "$ckpt" >"$dir/cut.safetensors"
if "$saver" check "$dir/cut.safetensors" 2>/dev/null; then echo "a truncated file passed"; exit 1; fi
cp "$ckpt" "$dir/flipped.safetensors"
printf '\xff\xff\xff\xff' | dd of="$dir/flipped.safetensors" bs=1 seek=$(($(stat -c %s "$ckpt") - 4)) \
  conv=notrunc status=none
if "$saver" check "$dir/flipped.safetensors" 2>/dev/null; then echo "a corrupted file passed"; exit 1; fi
echo ok
