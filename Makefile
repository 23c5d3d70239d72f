# heaptrail — the front door. CMake does the work; these targets are what the README shows.
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build run demo test test-asan test-tsan fuzz bench clean test-cpython \
	test-cpython-quick check-format format install uninstall deb package-test

all: build

# The first configure installs missing Debian packages (scripts/deps.sh; as root).
$(BUILD)/CMakeCache.txt:
	scripts/deps.sh
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Build quietly (the log goes to $(BUILD)/build.log), record a real program (sqlite3 running a
# workload shipped in the repo) with stacks, print the report's summary and top sites, and
# write the HTML report beside the trace.
run:
	@mkdir -p $(BUILD)
	@echo "heaptrail: building (log in $(BUILD)/build.log)"
	@$(MAKE) --no-print-directory build > $(BUILD)/build.log 2>&1 || \
		{ tail -n 40 $(BUILD)/build.log; exit 1; }
	@echo "heaptrail: recording sqlite3 :memory: < bench/scripts/sqlite_workload.sql"
	@$(BUILD)/heaptrail record --stacks -o $(BUILD)/run.trace -- \
		sqlite3 :memory: < bench/scripts/sqlite_workload.sql > $(BUILD)/run.out
	@echo
	@$(BUILD)/heaptrail report --top 3 --sections summary,top $(BUILD)/run.trace
	@$(BUILD)/heaptrail report --format html -o $(BUILD)/report.html $(BUILD)/run.trace
	@echo
	@echo "heaptrail: the full report, as a page: $(abspath $(BUILD))/report.html"
	@echo "heaptrail: sqlite3's own output: $(BUILD)/run.out"

# The heap API demo: a private heap, its tiers and per-Source counters.
demo: build
	$(BUILD)/heap_demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Every C file as .clang-format says (clang-format 14, Debian 12): check-format lists the files
# that differ and fails; format rewrites them.
check-format:
	scripts/check-format.sh

format:
	scripts/format.sh

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	scripts/deps.sh
	cmake -S . -B $(ASAN_BUILD) -DHT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -LE no-sanitizer

# The threaded tests (label threads: heap stress, tracing with its writer and consumer threads,
# the control socket) under ThreadSanitizer. tests/tsan.supp names the functions that read
# without a lock on purpose; fork children may start threads (die_after_fork=0).
TSAN_OPTIONS_RUN = suppressions=$(CURDIR)/tests/tsan.supp die_after_fork=0 history_size=7 \
	second_deadlock_stack=1
test-tsan:
	scripts/deps.sh
	cmake -S . -B $(TSAN_BUILD) -DHT_TSAN=ON $(CMAKE_FLAGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" \
		ctest --output-on-failure -j $(JOBS) -L threads -LE no-sanitizer

# The fuzz targets — trace reader, control protocol requests, option values — under ASan +
# UBSan, each for FUZZ_SECONDS (CTest runs them for a few seconds only), replaying and mutating
# their corpora in tests/trace/. FUZZ_SEED=N gives another sequence; an input that fails is
# saved as $(ASAN_BUILD)/fuzz-crash-fuzz_trace_NAME.bin (replay it by naming it).
FUZZ_SECONDS ?= 300
FUZZ_SEED ?= 1
FUZZ_TARGETS = reader:corpus control:corpus-control options:corpus-options
fuzz:
	scripts/deps.sh
	cmake -S . -B $(ASAN_BUILD) -DHT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS) \
		--target $(foreach t,$(FUZZ_TARGETS),fuzz_trace_$(firstword $(subst :, ,$(t))))
	cd $(ASAN_BUILD) && $(foreach t,$(FUZZ_TARGETS),./fuzz_trace_$(firstword $(subst :, ,$(t))) \
		--seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED) \
		$(CURDIR)/tests/trace/$(lastword $(subst :, ,$(t))) &&) true

# CPython's regression suite (Debian's python3.11 and its tests) three ways: plain, under the
# preload library, and under it with PYTHONMALLOC=malloc. A module that passes plain and not
# under the library fails the target; logs and per-module results go to $(BUILD)/cpython/
# (the quick run's to $(BUILD)/cpython-quick/).
# The whole suite takes an hour or more (not part of `make test`); CPYTHON_TESTS="test_os ..."
# runs only those modules. The quick run is CI's: the modules that fork, exec, signal, map and
# thread the most, without the forkserver tests' thread and manager variants (the same tests
# over threads and over a manager's proxies; with them the run takes over 5 minutes on 2 cores).
# CPYTHON_IGNORE names test classes (or patterns) left out of every run: this one waits in accept
# until the module's 20-minute timeout on virtual machines whose vsock cannot reach itself
# (CPython's gh-101384, fixed after 3.11.2).
CPYTHON ?= /usr/bin/python3.11
CPYTHON_TESTS ?=
CPYTHON_IGNORE ?= ThreadedVSOCKSocketStreamTest
CPYTHON_QUICK = test_multiprocessing_forkserver test_signal test_subprocess test_threading \
	test_os test_mmap
CPYTHON_SUITE = $(CPYTHON) tests/cpython/run_suite.py --python $(CPYTHON) --jobs $(JOBS) \
	--library $(BUILD)/libheaptrail-preload.so \
	$(foreach pattern,$(CPYTHON_IGNORE),--ignore '$(pattern)')
test-cpython: build
	scripts/deps.sh cpython
	$(CPYTHON_SUITE) --work $(BUILD)/cpython $(CPYTHON_TESTS)

test-cpython-quick: build
	scripts/deps.sh cpython
	$(CPYTHON_SUITE) --work $(BUILD)/cpython-quick --ignore 'WithThreads*' \
		--ignore 'WithManager*' $(CPYTHON_QUICK)

# make install [PREFIX=/usr/local] [DESTDIR=]: the command, the preload library (always
# PREFIX/lib/heaptrail), libheaptrail (.so.0 and .a, in LIBDIR: lib, or lib/x86_64-linux-gnu for
# PREFIX=/usr on Debian), headers, heaptrail.pc, the CMake package, the man pages and bash
# completion (cmake/install.cmake). The build is configured for PREFIX first. make uninstall
# removes what the last install put, from $(BUILD)/install_manifest.txt (give the same DESTDIR).
PREFIX ?= /usr/local
install: build
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

uninstall:
	DESTDIR=$(DESTDIR) scripts/uninstall.sh $(BUILD)/install_manifest.txt

# The Debian packages (heaptrail, libheaptrail0, libheaptrail-dev) into $(BUILD)/, checked with
# lintian (docs/PACKAGING.md); package-test installs them and tries them from /usr.
deb:
	scripts/build-deb.sh $(BUILD)

package-test:
	scripts/package-test.sh

bench: build
	scripts/deps.sh bench
	python3 bench/run.py

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
