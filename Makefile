# Thin wrapper over CMake: `make run`, `make test` are all a newcomer needs.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local

.PHONY: all deps configure run test bench install clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)

run: deps all
	@scripts/run-examples $(BUILD)
	$(BUILD)/cgrad train --epochs 2

test: deps all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

install: all
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD)

bench: deps all
	@for b in $(BUILD)/bench_*; do echo "== $$b"; OPENBLAS_NUM_THREADS=2 $$b; done
