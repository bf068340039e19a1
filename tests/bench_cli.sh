#!/usr/bin/env bash
# bench_cli.sh BUILD_DIR - `cgrad bench` runs a workload (W1, which needs no data set) in a
# quick smoke run and prints one "key value unit  what" line per figure, every value a
# positive number; W4's traced product agrees with its eager one; unknown workloads and bad
# options exit 2 with usage.
set -eu
out=$("$1/cgrad" bench w1 --quick)
[ "$(grep -c '^w1\.' <<<"$out")" -eq 8 ]
while read -r key value unit rest; do
  awk -v v="$value" 'BEGIN { exit !(v + 0 > 0) }' || { echo "bad value in: $key $value"; exit 1; }
  [ "$unit" = ns ] || { echo "bad unit in: $key $value $unit"; exit 1; }
done <<<"$out"
grep -q '^w1.64x64.traced ' <<<"$out"
# W4 (where the data set is installed): its traced product must agree with the eager one
if [ -d /usr/share/datasets/fashion-mnist ]; then
  out=$("$1/cgrad" bench w4 --quick)
  grep -q '^w4.hvp_ms ' <<<"$out"
  grep -q '^w4.hvp_traced_ms ' <<<"$out"
fi
"$1/cgrad" bench --help | grep -q 'usage: cgrad bench'
set +e
"$1/cgrad" bench w9 2>/dev/null; [ $? -eq 2 ] || exit 1
"$1/cgrad" bench --epochs 99 w2 2>/dev/null; [ $? -eq 2 ] || exit 1
echo ok
