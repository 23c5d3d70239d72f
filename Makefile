# heaptrail — the front door. CMake does the work; these targets are what the README shows.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build run demo test test-asan bench clean

all: build

# The first configure installs missing Debian packages (scripts/deps.sh; as root).
$(BUILD)/CMakeCache.txt:
	scripts/deps.sh
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Build, then record a real program (sqlite3 running a workload shipped in the repo) with
# `heaptrail record`, and print the trace's stats.
run: build
	$(BUILD)/heaptrail record -o $(BUILD)/run.trace -- \
		sqlite3 :memory: < bench/scripts/sqlite_workload.sql > $(BUILD)/run.out
	@echo "(sqlite3's own output is in $(BUILD)/run.out)"
	$(BUILD)/heaptrail stats $(BUILD)/run.trace

# The heap API demo: a private heap, its tiers and per-Source counters.
demo: build
	$(BUILD)/heap_demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	scripts/deps.sh
	cmake -S . -B $(ASAN_BUILD) -DHT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -LE no-sanitizer

bench: build
	python3 bench/run.py

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
