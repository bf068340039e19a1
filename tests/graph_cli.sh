#!/usr/bin/env bash
# graph_cli.sh BUILD_DIR - `cgrad graph` writes DOT with gradient nodes, the override and
# the custom gradient visible; bad options exit non-zero.
set -eu
out=$("$1/cgrad" graph)
grep -q '^digraph cgrad {' <<<"$out"
grep -q 'gradient: StraightThrough (override)' <<<"$out"
grep -q 'ClipGradient\\n.*custom gradient' <<<"$out"
grep -q 'from the gradient of MatMul' <<<"$out"
grep -q 'placeholder images' <<<"$out"
if "$1/cgrad" graph --bogus 2>/dev/null; then exit 1; fi
echo ok
