# Thin wrapper over CMake: `make run`, `make test` are all a newcomer needs.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 60

.PHONY: all deps configure run test bench install clean fuzz

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

# W1..W5 with cgrad and PyTorch side by side, one table (bench/RESULTS.md has a run).
bench: deps all
	@scripts/install-deps bench
	bench/run $(BUILD)

# libFuzzer targets (fuzz/) in build-fuzz with clang, ASan and UBSan, FUZZ_SECONDS each.
fuzz:
	scripts/fuzz-all $(FUZZ_SECONDS)
