# orch - run autonomous teams of LLM agents by need.
#
#   make            build bin/ (optimised, warnings are errors)
#   make check      install test dependencies if missing, build, run the tests
#                   three times: plain, with PostgreSQL as the store (make
#                   check-pg), under AddressSanitizer+UBSan; then a few
#                   seconds of each fuzzer
#   make check-pg   the suite with PostgreSQL as the store, on a server the
#                   tests start and stop (skipped without one); check-pg-san
#                   the same under the sanitizers
#   make bench      the benchmarks beside ninja, make and raw SQL (minutes)
#   make crash      200+ SIGKILLs at random moments, and the overlap test
#   make fuzz       each libFuzzer harness for FUZZ_SECONDS (default 300)
#   make valgrind   the pipeline's tests with every program under valgrind
#   make demo       install dependencies if missing, run examples/demo.sh
#   make deps       install the Debian packages orch needs (apt-get)
#   make install    PREFIX=/usr/local DESTDIR= ; make uninstall
#   make SANITIZE=1 build into build-san/ with -fsanitize=address,undefined

PROGRAMS = orch orch-stack orch-detect orch-graph orch-exec orch-decide orch-agent

CC ?= cc
PKGS = jansson sqlite3 libcurl libpq
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wno-format-nonliteral
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Ilib \
             -DORCH_DATADIR='"$(DATADIR)"' \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -ljansson -lsqlite3 -lcurl -lpq) -lm

ifeq ($(SANITIZE),1)
BUILD ?= build-san
ALL_CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else
BUILD ?= build
endif

PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man
DATADIR = $(PREFIX)/share/orch
DOCDIR = $(PREFIX)/share/doc/orch
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
# Debian's directory for zsh completions shipped by packages.
ZSHCOMPDIR = $(PREFIX)/share/zsh/vendor-completions

LIB_SRC ?= $(sort $(wildcard lib/*.c))
# orch-stack's subcommand groups (cmd/stack-*.c), linked into it alone.
STACK_OBJ = $(patsubst cmd/%.c,$(BUILD)/cmd/%.o,$(sort $(wildcard cmd/stack-*.c)))
LIB_OBJ = $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIB_A = $(BUILD)/liborch.a
BINS = $(PROGRAMS:%=$(BUILD)/bin/%)

# Debian packages: to build, to test, to run the demo.
DEPS_BUILD = build-essential pkg-config libjansson-dev libsqlite3-dev \
             libcurl4-openssl-dev libpq-dev
DEPS_TEST = bats bats-assert bats-support jq sqlite3 mandoc groff-base python3 python3-jsonschema \
            python3-yaml zsh ninja-build time graphviz curl openssl chromium nghttp2-server \
            postgresql
DEPS_DEMO = jq
# make fuzz (clang, the libFuzzer runtime) and make valgrind.
DEPS_FUZZ = clang libclang-rt-14-dev valgrind

all: $(BINS) bin

bin: $(BINS)
	@mkdir -p bin
	@for p in $(PROGRAMS); do ln -sf ../$(BUILD)/bin/$$p bin/$$p; done

# Rebuild everything when the flags change (PREFIX is compiled in), as git's
# GIT-CFLAGS does.
FLAGS_STAMP = $(BUILD)/flags.stamp
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' >$@

$(BUILD)/lib/%.o: lib/%.c lib/*.h $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/cmd/%.o: cmd/%.c lib/*.h cmd/*.h $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/cmd/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB_A) $(LIBS)

$(BUILD)/bin/orch-stack: $(BUILD)/cmd/orch-stack.o $(STACK_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB_A) $(LIBS)

# Install missing packages only, so a machine that has them needs no root.
deps:
	@missing=$$(for p in $(DEPS_BUILD) $(DEPS_TEST) $(DEPS_DEMO) $(DEPS_FUZZ); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

# The sanitizer pass leaves out the suites that test shell scripts and
# packaging (completions, install, the test runner) and the benchmarks'
# smoke: the C they run is run by the other suites.
SAN_TESTS = $(filter-out tests/completion.bats tests/install.bats tests/bench.bats tests/run-lanes.bats,$(wildcard tests/*.bats))

# make check: the suite on SQLite and on PostgreSQL at once, in lanes
# (tests/run-lanes.sh: a few bats runs side by side, since the tests wait
# on processes, servers and clocks more than on the CPU), then the
# sanitizers' and the fuzzers' smoke. The whole suite under the
# sanitizers is make check-san (CI runs it too).
check: deps
	$(MAKE) all
	$(LANES) sqlite:2 $(wildcard tests/*.bats) postgres:2 $(PG_TESTS)
	$(MAKE) san-smoke
	$(MAKE) fuzz-smoke

# The plain build's suite with PostgreSQL as the store (tests/pg.bash): a
# cluster per lane, started by the tests as an unprivileged user in a
# temporary directory and stopped at the end. Skipped, saying so, where the
# server's programs are not installed (make deps installs them). The same
# suites as the sanitizer pass: the completions', install's and benchmarks'
# test shell scripts, packaging and SQLite's benchmarks, not the store.
PG_BINDIR ?= /usr/lib/postgresql/15/bin
PG_TESTS = $(SAN_TESTS)
LANES = ORCH_BUILD=$(CURDIR)/$(BUILD) ORCH_TEST_PG_BINDIR=$(PG_BINDIR) tests/run-lanes.sh
check-pg: $(PROGRAMS:%=$(BUILD)/bin/%)
	$(LANES) postgres:2 $(PG_TESTS)

# The suite under AddressSanitizer and UndefinedBehaviorSanitizer: on
# SQLite (check-san), on PostgreSQL (check-pg-san), and their smoke in
# make check: the suites that feed the programs hostile input and
# misbehaving agents, and the PostgreSQL engine's own (the server's
# faults, hosts sharing it, copies between engines), both engines at once.
SAN_SMOKE = tests/bad-input.bats tests/hostile.bats tests/turns.bats
PG_SAN_SMOKE = tests/store-pg.bats tests/stack-copy.bats
SAN_LANES = ORCH_BUILD=$(CURDIR)/build-san ORCH_TEST_PG_BINDIR=$(PG_BINDIR) tests/run-lanes.sh
check-san:
	$(MAKE) SANITIZE=1 $(PROGRAMS:%=build-san/bin/%)
	$(SAN_LANES) sqlite:2 $(SAN_TESTS)
check-pg-san:
	$(MAKE) SANITIZE=1 $(PROGRAMS:%=build-san/bin/%)
	$(SAN_LANES) postgres:2 $(PG_TESTS)
san-smoke:
	$(MAKE) SANITIZE=1 $(PROGRAMS:%=build-san/bin/%)
	$(SAN_LANES) sqlite:1 $(SAN_SMOKE) postgres:1 $(PG_SAN_SMOKE)

# One quick pass without the sanitizer run.
test: all
	ORCH_BUILD=$(CURDIR)/$(BUILD) bats tests

# The benchmarks of issue 6 (tests/bench/README.md): figures beside ninja,
# make and the raw SQL query, as ratios. A few minutes.
bench: deps
	$(MAKE) all
	ORCH_BUILD=$(CURDIR)/$(BUILD) tests/bench/run.sh $(BENCH_FLAGS)
	ORCH_BUILD=$(CURDIR)/$(BUILD) tests/bench/hosts.sh

# Crash safety in full (tests/crash.bats runs a quick subset): SIGKILL
# CRASH_KILLS times each to orch-exec, an agent and orch-decide, then the
# overlap test for OVERLAP_ROUNDS rounds. CRASH_SEED replays a run.
CRASH_KILLS ?= 100
OVERLAP_ROUNDS ?= 10
crash: $(BINS)
	rm -rf $(BUILD)/crash
	for t in exec agent decide; do \
		PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" tests/crash/crash.sh -t $$t \
			-n $(CRASH_KILLS) $(if $(CRASH_SEED),-s $(CRASH_SEED)) $(BUILD)/crash/$$t || exit 1; \
	done
	ORCH_BUILD=$(CURDIR)/$(BUILD) ORCH_OVERLAP_ROUNDS=$(OVERLAP_ROUNDS) bats tests/overlap.bats

# libFuzzer harnesses (tests/fuzz/README.md), one per parser of untrusted
# input, with the library built again by clang into build-fuzz/ under
# AddressSanitizer and UBSan. make fuzz runs each for FUZZ_SECONDS and
# keeps what it finds in build-fuzz/corpus/; make fuzz-smoke runs each for
# FUZZ_SMOKE_SECONDS over the seed corpus in tests/fuzz/corpus/.
FUZZ_CC = clang
FUZZ_BUILD = build-fuzz
FUZZ_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=all
FUZZ_TARGETS = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 2
FUZZ_RUN = -dict=tests/fuzz/orch.dict -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h lib/*.c lib/*.h
	$(MAKE) --no-print-directory CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) \
		CFLAGS='$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link' $(FUZZ_BUILD)/liborch.a
	$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_BUILD)/liborch.a $(LIBS)

fuzz fuzz-smoke: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
	@for t in $(FUZZ_TARGETS); do \
		secs=$(if $(filter fuzz,$@),$(FUZZ_SECONDS),$(FUZZ_SMOKE_SECONDS)); \
		work=$(FUZZ_BUILD)/corpus/$$t; mkdir -p $$work; \
		echo "$@: $$t for $$secs s"; \
		$(FUZZ_BUILD)/$$t $(FUZZ_RUN) -max_total_time=$$secs \
			-artifact_prefix=$(FUZZ_BUILD)/$$t- $$work tests/fuzz/corpus/$$t \
			>$(FUZZ_BUILD)/$$t.log 2>&1 || { tail -n 40 $(FUZZ_BUILD)/$$t.log; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_BUILD)/$$t.log | tr '\n' ' '; echo; \
	done

# The pipeline's tests with every orch program under valgrind (memcheck:
# leaks, invalid reads and writes, uninitialised values), from wrappers in
# build-vg/bin around $(BUILD)/bin. A finding fails the run and is printed
# from build-vg/log/PID.log. Of orch-exec's and orch-decide's tests, those
# that time the schedule are left out (VALGRIND_EXEC, VALGRIND_DECIDE and
# VALGRIND_TURNS pick the rest by name), and those that need vfork's
# shared memory (valgrind runs vfork as fork) to say a command cannot run.
VALGRIND_TESTS = tests/orch-detect.bats tests/orch-graph.bats tests/bad-input.bats \
	tests/budget.bats tests/estimate.bats
VALGRIND_DECIDE = ^([^-]|--no-db|--wait (exits|with))
VALGRIND_TURNS = same actions|many turns|misbehaves|HTTP/2
VALGRIND_EXEC = example team|full pipeline|retries used up|does not stop its siblings|gets its todo|all or none|not an actions document|past the cap|never a shell|not running passes|no nodes|overlapping|kill -9|errors name|traces keep|bad input|usage errors|empty input
valgrind: $(BINS)
	rm -rf build-vg && mkdir -p build-vg/bin build-vg/log
	for p in $(PROGRAMS); do \
		printf '#!/bin/sh\nexec valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --error-exitcode=99 --log-file=%s/build-vg/log/%%p.log %s/$(BUILD)/bin/%s "$$@"\n' \
			"$(CURDIR)" "$(CURDIR)" $$p >build-vg/bin/$$p; \
		chmod +x build-vg/bin/$$p; \
	done
	ORCH_BUILD=$(CURDIR)/build-vg bats $(VALGRIND_TESTS) && \
	ORCH_BUILD=$(CURDIR)/build-vg bats -f '$(VALGRIND_DECIDE)' tests/orch-decide.bats && \
	ORCH_BUILD=$(CURDIR)/build-vg bats -f '$(VALGRIND_EXEC)' tests/orch-exec.bats && \
	ORCH_BUILD=$(CURDIR)/build-vg bats -f '$(VALGRIND_TURNS)' tests/turns.bats || \
		{ find build-vg/log -type f -size +0 -exec cat {} +; exit 1; }
	@n=$$(find build-vg/log -type f | wc -l); \
	if find build-vg/log -type f -size +0 | grep -q .; then find build-vg/log -type f -size +0 -exec cat {} +; exit 1; fi; \
	echo "valgrind: $$n program runs, no errors, no leaks"

demo: deps
	$(MAKE) all
	sh examples/demo.sh

# $(BINS), not all: installing must not touch the source tree's bin/.
install: $(BINS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(DATADIR)/prompts $(DESTDIR)$(DOCDIR)/examples/agents \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(wildcard man/*.7) $(DESTDIR)$(MANDIR)/man7
	install -m 644 $(wildcard prompts/*.md) $(DESTDIR)$(DATADIR)/prompts
	install -m 644 README.md $(DESTDIR)$(DOCDIR)
	install -m 755 examples/agents/* $(DESTDIR)$(DOCDIR)/examples/agents
	install -m 755 $(wildcard examples/*.sh) $(DESTDIR)$(DOCDIR)/examples
	install -m 644 $(filter-out examples/agents %.sh,$(wildcard examples/*)) \
		$(DESTDIR)$(DOCDIR)/examples
	install -m 644 completions/orch.bash $(DESTDIR)$(BASHCOMPDIR)/orch
	for p in $(filter-out orch,$(PROGRAMS)); do \
		ln -sf orch $(DESTDIR)$(BASHCOMPDIR)/$$p; done
	install -m 644 completions/_orch $(DESTDIR)$(ZSHCOMPDIR)/_orch

uninstall:
	rm -f $(PROGRAMS:%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man1/%,$(wildcard man/*.1))
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man7/%,$(wildcard man/*.7))
	rm -f $(PROGRAMS:%=$(DESTDIR)$(BASHCOMPDIR)/%)
	rm -f $(DESTDIR)$(ZSHCOMPDIR)/_orch
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build build-san bin

.PHONY: FORCE all bin deps check check-pg check-san check-pg-san san-smoke test bench demo install uninstall clean crash fuzz fuzz-smoke valgrind
