#!/usr/bin/env bash
# gradcheck_cli.sh BUILD_DIR - `cgrad gradcheck` passes for every op at order 2 in f64,
# checks a loaded op library's op, and exits non-zero on bad usage.
set -eu
build=$1
out=$("$build/cgrad" gradcheck --all --order 2)
tail -n 1 <<<"$out"
grep -qE '^[0-9]+ passed, 0 failed \(dtype f64, order 2\)$' <<<"$out"
out=$("$build/cgrad" gradcheck --load "$build/libmyops.so" SoftClip)
grep -qE '^SoftClip +generated \[3,4\] +order 1 .* ok$' <<<"$out" || { echo "$out"; exit 1; }
if "$build/cgrad" gradcheck NoSuchOp 2>/dev/null; then echo "unknown op accepted"; exit 1; fi
if "$build/cgrad" gradcheck --order 3 2>/dev/null; then echo "bad order accepted"; exit 1; fi
"$build/cgrad" gradcheck --dtype f32 Tanh MatMul | tail -n 1 | grep -q ' 0 failed (dtype f32'
echo ok
