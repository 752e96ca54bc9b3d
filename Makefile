# Pensieve — top-level targets over CMake.
#   make         build build/pensieve and the engine library
#   make run     set up, build, serve the default model on http://127.0.0.1:7777
#   make test    set up (packages, npm test deps, fixtures), build, run every test through
#                CTest, then build and run the suite again under ASan + UBSan
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
SHARED ?= $(if $(PENSIEVE_TEST_DATA),$(PENSIEVE_TEST_DATA),$(abspath ../shared))
MODEL ?= $(SHARED)/models/stories260K.gguf

.PHONY: all build setup fixtures test test-fast test-asan run clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

fixtures:
	@bash scripts/fixtures.sh "$(SHARED)" "$(BUILD)/fixtures"

test: setup build fixtures test-fast test-asan

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPV_SANITIZE=ON -DCMAKE_C_FLAGS_DEBUG="-O1 -g"

test-asan: $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS) -LE no-asan

# the server in the foreground on 127.0.0.1:7777 (Ctrl-C stops it); ARGS adds flags
run:
	@bash scripts/setup.sh --runtime
	@$(MAKE) --no-print-directory build
	./$(BUILD)/pensieve start -m "$(MODEL)" $(ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
