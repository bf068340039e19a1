#!/usr/bin/env bash
# examples.sh BUILD_DIR - runs every example and checks the lines it must print.
set -u
build=${1:-build}
fail=0
expect() { # expect EXAMPLE PATTERN...: the example exits 0 and prints every pattern
  local name=$1; shift
  local out
  if ! out=$("$build/$name" 2>&1); then
    echo "FAIL $name exited non-zero:"; echo "$out"; fail=1; return
  fi
  for pattern in "$@"; do
    if ! grep -qE -- "$pattern" <<<"$out"; then
      echo "FAIL $name: no line matches '$pattern' in:"; echo "$out"; fail=1
    fi
  done
  echo "ok   $name"
}
expect first 'tensor\(1\., dtype=f32\)'
expect custom_gradient \
  'x = 0: autodiff of log\(1\+exp\(x\)\) gives 0.5, custom gradient gives 0.5' \
  'x = 100: autodiff of log\(1\+exp\(x\)\) gives -?nan, custom gradient gives 1$'
expect override_gradient \
  'inside the override scope: d\(x\^2\)/dx at x = 3 is 2$' \
  'outside the override scope: d\(x\^2\)/dx at x = 3 is 6$'
expect custom_op \
  "swish'\(x\) at -1, 0, 2: tensor\(\[0.0723295, 0.5, 1.09078\], dtype=f64\)" \
  'cg_gradcheck \(order 2\): second-order gradient check passed'
expect custom_loss \
  'correct custom gradient: gradient check passed' \
  'largest difference from plain autodiff: 0$' \
  'wrong custom gradient: gradient check failed at input 0, element [0-9]+ .*autodiff gives' \
  'fit after 300 steps: w = 3.00[0-9], b = 0.50[0-9]|fit after 300 steps: w = 2.99[0-9], b = 0.50[0-9]'
expect higher_order \
  "f''\(x\) = 6.5658615222 \(formula 6.5658615222\)" \
  'largest difference from the formula: [0-9.e-]+$'
expect graph_mode 'd\(x\^2\)/dx at x = 3 with Square overridden: 2$'
exit $fail
