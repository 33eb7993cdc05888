# weft — convenience wrapper around CMake. The build itself is CMakeLists.txt;
# everything here can be done by hand with cmake/ctest (see docs/building.md).
#
#   make run      install missing Debian packages, build, run weft-echo on PORT
#   make test     same, with -Werror, then every test (ctest)
#   make help     every target and variable
#
# Variables (override on the command line: make test JOBS=8 BUILD_DIR=out):
BUILD_DIR  ?= build
ASAN_DIR   ?= build-asan
TSAN_DIR   ?= build-tsan
BUILD_TYPE ?= Release
# Sanitizer builds keep assertions and debug info.
SAN_BUILD_TYPE ?= Debug
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
TEST_JOBS  ?= 2
PORT       ?= 7000
PREFIX     ?= /usr/local
DESTDIR    ?=
# Extra arguments: CMAKE_ARGS to every configure, ARGS to weft-echo (make run),
# CTEST_ARGS to ctest (e.g. CTEST_ARGS='-R ring').
CMAKE_ARGS ?=
ARGS       ?=
CTEST_ARGS ?=
# SKIP_DEPS=1 skips the package check (non-Debian systems, offline machines).
SKIP_DEPS  ?=
CMAKE      ?= cmake
CTEST      ?= ctest
CLANG_FORMAT ?= clang-format

# Sources that clang-format owns.
FORMAT_DIRS  := core workers buffers stats tools tests examples bench include fuzz
FORMAT_FILES  = $(shell find $(or $(wildcard $(FORMAT_DIRS)),/dev/null) -type f -name '*.[ch]' | sort)

# Sanitizer runtime settings for the test runs; override in the environment.
export ASAN_OPTIONS  ?= detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS  ?= halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp

# configure DIR TYPE EXTRA-ARGS: (re)configure a build tree. Every setting is
# passed explicitly so a tree's flags do not depend on what ran before. The
# prefix is passed too, so that GNUInstallDirs picks the right lib dir for it
# (lib/<multiarch> under /usr).
define configure
	$(CMAKE) -S . -B $(1) -DCMAKE_BUILD_TYPE=$(2) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(3) $(CMAKE_ARGS)
endef

# run_ctest DIR: every test, once per I/O backend (WEFT_IO picks the backend
# of every server a test starts: workers/io.h). The first failing pass stops.
IO_BACKENDS ?= epoll poll uring
define run_ctest
	@set -e; for io in $(IO_BACKENDS); do \
	    echo "== ctest, I/O backend $$io ($(1))"; \
	    WEFT_IO=$$io $(CTEST) --test-dir $(1) --output-on-failure --no-tests=error -j $(TEST_JOBS) $(CTEST_ARGS); \
	done
endef

# cmake --build runs make too; keep its output free of "Entering directory".
MAKEFLAGS += --no-print-directory

.DEFAULT_GOAL := build
.PHONY: help deps deps-bench configure build run test asan tsan fuzz man format format-check \
        install bench clean

help:
	@echo 'weft make targets:'
	@echo '  make run           deps + build, then weft-echo on 127.0.0.1:$$PORT (foreground)'
	@echo '  make test          deps + build with -Werror + ctest (-j$$TEST_JOBS), once per I/O backend'
	@echo '  make build         configure ($$BUILD_TYPE) in $$BUILD_DIR and build (default)'
	@echo '  make deps          install the missing Debian packages (apt-get; sudo if not root)'
	@echo '  make asan          ASan+UBSan build in $$ASAN_DIR, then ctest'
	@echo '  make tsan          TSan build in $$TSAN_DIR, then ctest'
	@echo '  make fuzz          every libFuzzer target for FUZZ_SECONDS (30) from its seed corpus'
	@echo '  make format        clang-format -i every .c/.h'
	@echo '  make format-check  list the files clang-format would change; fail if any'
	@echo '  make install       install into $$DESTDIR$$PREFIX (default /usr/local)'
	@echo '  make bench         deps (incl. libuv, libevent) + bench/run.sh'
	@echo '  make clean         remove the build trees'
	@echo 'variables: BUILD_DIR=$(BUILD_DIR) BUILD_TYPE=$(BUILD_TYPE) JOBS=$(JOBS)' \
	      'TEST_JOBS=$(TEST_JOBS) IO_BACKENDS="$(IO_BACKENDS)" PORT=$(PORT) PREFIX=$(PREFIX) ARGS= CMAKE_ARGS= CTEST_ARGS= SKIP_DEPS='

deps:
ifeq ($(SKIP_DEPS),)
	@scripts/deps.sh
else
	@echo "deps: skipped (SKIP_DEPS=$(SKIP_DEPS))"
endif

deps-bench:
ifeq ($(SKIP_DEPS),)
	@scripts/deps.sh --bench
else
	@echo "deps: skipped (SKIP_DEPS=$(SKIP_DEPS))"
endif

configure:
	$(call configure,$(BUILD_DIR),$(BUILD_TYPE),-DWEFT_WERROR=OFF -DWEFT_SANITIZE=)

build: configure
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

run: deps
	@$(MAKE) build
	@echo "make run: $(BUILD_DIR)/tools/weft-echo --port $(PORT) $(ARGS)  (connect with: nc 127.0.0.1 $(PORT); Ctrl-C stops it)"
	@exec $(BUILD_DIR)/tools/weft-echo --port $(PORT) $(ARGS)

test: deps
	$(call configure,$(BUILD_DIR),$(BUILD_TYPE),-DWEFT_WERROR=ON -DWEFT_SANITIZE=)
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)
	$(call run_ctest,$(BUILD_DIR))

# ASan + UBSan (WEFT_SANITIZE=address): no jemalloc, pools on the system allocator.
asan: deps
	$(call configure,$(ASAN_DIR),$(SAN_BUILD_TYPE),-DWEFT_WERROR=ON -DWEFT_SANITIZE=address)
	$(CMAKE) --build $(ASAN_DIR) -j $(JOBS)
	$(call run_ctest,$(ASAN_DIR))

tsan: deps
	$(call configure,$(TSAN_DIR),$(SAN_BUILD_TYPE),-DWEFT_WERROR=ON -DWEFT_SANITIZE=thread)
	$(CMAKE) --build $(TSAN_DIR) -j $(JOBS)
	$(call run_ctest,$(TSAN_DIR))

# Man pages of the tools, from their --help (help2man; docs/man/*.1 are committed).
man: build
	@command -v help2man >/dev/null || { echo 'make man: needs help2man (apt-get install help2man)' >&2; exit 1; }
	@v=$$(sed -n 's/^project(weft VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt); \
	for t in tools/weft-echo:'the weft reference echo server':server \
	         tools/weft-load:'load generator for TCP echo servers, every byte verified': \
	         tools/weft-stat:'live statistics of a running weft server': \
	         examples/http/weft-http:'the weft HTTP/1.1 server example':server \
	         examples/kv/weft-kv:'the weft key-value server example (RESP)':server \
	         examples/chat/weft-chat:'the weft chat server example':server \
	         examples/multi/weft-multi:'several protocols in one weft server':server; do \
	    p=$${t%%:*}; rest=$${t#*:}; what=$${rest%:*}; kind=$${rest##*:}; n=$${p##*/}; \
	    [ -x $(BUILD_DIR)/$$p ] || continue; \
	    inc="--include docs/man/$$n.h2m"; \
	    [ "$$kind" = server ] && inc="$$inc --include docs/man/weft-server.h2m"; \
	    help2man --no-info -N -S weft --version-string=$$v -n "$$what" $$inc \
	        $(BUILD_DIR)/$$p > docs/man/$$n.1 && echo "docs/man/$$n.1"; done

# libFuzzer targets (clang), each run for FUZZ_SECONDS from fuzz/corpus/.
FUZZ_SECONDS ?= 30
fuzz: deps
	FUZZ_BUILD_DIR=build-fuzz JOBS=$(JOBS) fuzz/run.sh $(FUZZ_SECONDS)

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

# One clang-format run per file so that the failure names every file that
# differs; the diff shows what would change.
format-check:
	@bad=0; for f in $(FORMAT_FILES); do \
	    if ! $(CLANG_FORMAT) --dry-run -Werror "$$f" >/dev/null 2>&1; then \
	        echo "needs formatting: $$f"; \
	        $(CLANG_FORMAT) "$$f" | diff -u "$$f" - | head -n 40; \
	        bad=1; \
	    fi; \
	done; \
	if [ $$bad -ne 0 ]; then echo "format-check: FAILED (run 'make format')"; exit 1; fi; \
	echo "format-check: $(words $(FORMAT_FILES)) files clean"

install: build
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD_DIR) --prefix "$(PREFIX)"

bench: deps-bench
	@if [ -f bench/run.sh ]; then \
	    BUILD_DIR="$(BUILD_DIR)" JOBS="$(JOBS)" bash bench/run.sh; \
	else \
	    echo "bench: no bench/run.sh yet"; \
	fi

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) build-release build-debug
