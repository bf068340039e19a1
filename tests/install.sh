#!/usr/bin/env bash
# install.sh BUILD_DIR - `make install` gives a usable package: a program builds against it
# with pkg-config and with CMake's find_package, and the shared library carries a SONAME.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name libcgrad.so -printf '%h\n' | head -n 1)
objdump -p "$libdir/libcgrad.so" | grep -q 'SONAME *libcgrad.so.0'
test -f "$libdir/libcgrad.a" && test -f "$prefix/include/cgrad.h"
# hidden visibility: only cg_ symbols are exported
if nm -D --defined-only "$libdir/libcgrad.so" | awk '{print $3}' | grep -v '^cg_' | grep -v '^_' | grep -q .; then
  echo "symbols other than cg_ exported:"; nm -D --defined-only "$libdir/libcgrad.so" | awk '{print $3}' | grep -v '^cg_' | head; exit 1
fi
PKG_CONFIG_PATH="$libdir/pkgconfig" cc -std=c11 -o "$prefix/first" "$src/examples/first.c" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs cgrad)
LD_LIBRARY_PATH="$libdir" "$prefix/first" | grep -q 'tensor(1., dtype=f32)'
mkdir -p "$prefix/proj"
cat >"$prefix/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(use_cgrad C)
find_package(cgrad REQUIRED)
add_executable(first $src/examples/first.c)
target_link_libraries(first cgrad::cgrad)
CM
cmake -S "$prefix/proj" -B "$prefix/proj/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/proj/build" >/dev/null
LD_LIBRARY_PATH="$libdir" "$prefix/proj/build/first" | grep -q 'tensor(1., dtype=f32)'
echo ok
