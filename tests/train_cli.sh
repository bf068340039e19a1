#!/usr/bin/env bash
# train_cli.sh BUILD_DIR - `cgrad train` end to end on a slice of Fashion-MNIST: the loss
# falls, the CSV/SVG/checkpoint files appear, the custom-gradient loss trains like the
# built-in one, a resumed run continues exactly where the saved one stopped, bad options fail.
set -eu
bin="$1/cgrad"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--limit 3000 --batch 100 --quiet --seed 7)

"$bin" train "${common[@]}" --epochs 3 --log "$dir/a.csv" --plot "$dir/a.svg" --save "$dir/a.ckpt" >"$dir/a.out"
cat "$dir/a.out"
test "$(wc -l <"$dir/a.csv")" -eq 4                       # header + 3 epochs
awk -F, 'NR == 2 {first = $2} NR == 4 {last = $2} END {exit !(last < first * 0.8)}' "$dir/a.csv"
grep -q '<svg' "$dir/a.svg" && grep -q '</svg>' "$dir/a.svg"
test -s "$dir/a.ckpt" && ! ls "$dir"/*.tmp.* 2>/dev/null
grep -qE '^final test accuracy: [0-9.]+%$' "$dir/a.out"

# the same training with the loss's gradient given by cg_custom_gradient
"$bin" train "${common[@]}" --epochs 3 --loss custom-xent --log "$dir/c.csv" >/dev/null
paste -d, "$dir/a.csv" "$dir/c.csv" | awk -F, 'NR > 1 { d = $5 - $12; if (d < 0) d = -d; if (d > 0.005) exit 1 }'

# stop after epoch 1, resume to epoch 3: the same numbers as the run that never stopped
"$bin" train "${common[@]}" --epochs 3 --stop-after 1 --save "$dir/b.ckpt" >/dev/null
"$bin" train "${common[@]}" --epochs 3 --resume "$dir/b.ckpt" --log "$dir/b.csv" >"$dir/b.out"
grep -q 'resumed from .* after epoch 1' "$dir/b.out"
diff <(cut -d, -f1-5 "$dir/a.csv" | tail -n 2) <(cut -d, -f1-5 "$dir/b.csv" | tail -n 2)

# bad input: clear errors, non-zero exits
if "$bin" train --model resnet --limit 100 2>"$dir/err"; then exit 1; fi
grep -q "unknown model 'resnet'" "$dir/err"
if "$bin" train --epochs 0 2>/dev/null; then exit 1; fi
if "$bin" train --resume "$dir/missing.ckpt" --limit 100 2>"$dir/err"; then exit 1; fi
grep -q 'missing.ckpt' "$dir/err"
head -c 100 "$dir/a.ckpt" >"$dir/cut.ckpt"
if "$bin" train --resume "$dir/cut.ckpt" --limit 100 2>"$dir/err"; then exit 1; fi
cat "$dir/err"
echo ok
