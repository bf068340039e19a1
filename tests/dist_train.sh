#!/usr/bin/env bash
# dist_train.sh BUILD_DIR - `mpirun -np N cgrad train --distributed` on a slice of
# Fashion-MNIST: 2 ranks keep bitwise identical variables after every step and train like one
# process on the same global batch; 1 rank is exactly plain `cgrad train`; the custom-gradient
# loss trains alike; rank 0 alone writes checkpoints, atomically, and --resume continues a
# distributed run exactly; ranks that disagree on the configuration stop with a message.
set -eu
. "$(dirname "$0")/dist_lib.bash"
mpi_or_skip "$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--limit 2000 --batch 100 --quiet --seed 7 --epochs 3)

# 2 ranks, uneven shards (51 and 50), variables fingerprinted and compared after every step
ranks 2 "$bin" train "${common[@]}" --batch 101 --distributed --check-every 1 --log "$dir/u.csv" >"$dir/u.out"
grep -q 'each takes 50 or 51 examples of every global batch of 101' "$dir/u.out"
test "$(wc -l <"$dir/u.csv")" -eq 4

# one process, plain and --distributed on 1 rank: the same numbers
"$bin" train "${common[@]}" --log "$dir/p.csv" >/dev/null
ranks 1 "$bin" train "${common[@]}" --distributed --log "$dir/d1.csv" >/dev/null
same_columns "$dir/p.csv" "$dir/d1.csv" 1-5

# 2 ranks on the same global batch: one process's run to float rounding
ranks 2 "$bin" train "${common[@]}" --distributed --check-every 1 --save "$dir/d2.ckpt" --log "$dir/d2.csv" \
  >"$dir/d2.out"
cat "$dir/d2.out"
close_columns "$dir/p.csv" "$dir/d2.csv" 0.002
grep -qE '^distributed: 2 ranks, 1\.03 MiB of gradients per step in 2 buckets' "$dir/d2.out"
test "$(grep -c '^final test accuracy' "$dir/d2.out")" -eq 1 # rank 0 alone prints
# rank 0 alone wrote the checkpoint, atomically: no temporary files left, "ranks" recorded
test -s "$dir/d2.ckpt" && ! ls "$dir"/*.tmp.* 2>/dev/null
head -c 4096 "$dir/d2.ckpt" | grep -qa '"ranks":"2"'

# the same with rank-order sums (on 2 ranks a + b either way: the same numbers)
ranks 2 "$bin" train "${common[@]}" --distributed --fixed-order --bucket-kb 64 --log "$dir/f.csv" >"$dir/f.out"
grep -q 'in 4 buckets' "$dir/f.out" # [logits, dense_2/bias] [dense_2/kernel] [dense_1/bias] [dense_1/kernel]
same_columns "$dir/d2.csv" "$dir/f.csv" 1-5

# the loss's gradient given by cg_custom_gradient, run on each rank before the reduction
ranks 2 "$bin" train "${common[@]}" --distributed --loss custom-xent --log "$dir/c.csv" >/dev/null
close_columns "$dir/d2.csv" "$dir/c.csv" 0.005

# stop after epoch 1, resume on 2 ranks: exactly the uninterrupted run; on 1 rank: to rounding
ranks 2 "$bin" train "${common[@]}" --distributed --stop-after 1 --save "$dir/s.ckpt" >/dev/null
cp "$dir/s.ckpt" "$dir/s1.ckpt"
ranks 2 "$bin" train "${common[@]}" --distributed --resume "$dir/s.ckpt" --log "$dir/r.csv" >"$dir/r.out"
grep -q 'resumed from .* after epoch 1' "$dir/r.out"
same_columns <(tail -n 2 "$dir/d2.csv") <(tail -n 2 "$dir/r.csv") 1-5
"$bin" train "${common[@]}" --resume "$dir/s1.ckpt" --log "$dir/r1.csv" >/dev/null
close_columns <(sed -n '1p;3,4p' "$dir/d2.csv") "$dir/r1.csv" 0.002

# ranks that disagree stop at once, each with a message, instead of training apart
if timeout -k 5 60 mpirun --allow-run-as-root --oversubscribe -np 1 "$bin" train --distributed --limit 500 --seed 1 \
  : -np 1 "$bin" train --distributed --limit 500 --seed 2 >"$dir/x.out" 2>&1; then exit 1; fi
test "$(grep -c 'disagree on the training configuration' "$dir/x.out")" -eq 2
echo ok
