# orch - run autonomous teams of LLM agents by need.
#
#   make            build bin/ (optimised, warnings are errors)
#   make check      install test dependencies if missing, build, run the tests
#                   twice: plain, then under AddressSanitizer+UBSan
#   make demo       install dependencies if missing, run examples/demo.sh
#   make deps       install the Debian packages orch needs (apt-get)
#   make install    PREFIX=/usr/local DESTDIR= ; make uninstall
#   make SANITIZE=1 build into build-san/ with -fsanitize=address,undefined

PROGRAMS = orch orch-stack orch-detect orch-graph orch-exec orch-decide orch-agent

CC ?= cc
PKGS = jansson sqlite3 libcurl
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wno-format-nonliteral
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Ilib \
             -DORCH_DATADIR='"$(DATADIR)"' \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -ljansson -lsqlite3 -lcurl) -lm

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

LIB_SRC ?= $(sort $(wildcard lib/*.c))
LIB_OBJ = $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIB_A = $(BUILD)/liborch.a
BINS = $(PROGRAMS:%=$(BUILD)/bin/%)

# Debian packages: to build, to test, to run the demo.
DEPS_BUILD = build-essential pkg-config libjansson-dev libsqlite3-dev \
             libcurl4-openssl-dev
DEPS_TEST = bats bats-assert bats-support jq sqlite3 mandoc groff-base python3
DEPS_DEMO = jq

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

$(BUILD)/cmd/%.o: cmd/%.c lib/*.h $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/cmd/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB_A) $(LIBS)

# Install missing packages only, so a machine that has them needs no root.
deps:
	@missing=$$(for p in $(DEPS_BUILD) $(DEPS_TEST) $(DEPS_DEMO); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

check: deps
	$(MAKE) all
	ORCH_BUILD=$(CURDIR)/build bats tests
	$(MAKE) SANITIZE=1 $(PROGRAMS:%=build-san/bin/%)
	ORCH_BUILD=$(CURDIR)/build-san bats tests

# One quick pass without the sanitizer run.
test: all
	ORCH_BUILD=$(CURDIR)/build bats tests

demo: deps
	$(MAKE) all
	sh examples/demo.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(DATADIR)/prompts $(DESTDIR)$(DOCDIR)/examples/agents \
		$(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(wildcard man/*.7) $(DESTDIR)$(MANDIR)/man7
	install -m 644 $(wildcard prompts/*.md) $(DESTDIR)$(DATADIR)/prompts
	install -m 644 README.md $(DESTDIR)$(DOCDIR)
	install -m 755 examples/agents/* $(DESTDIR)$(DOCDIR)/examples/agents
	install -m 644 $(filter-out examples/agents,$(wildcard examples/*)) $(DESTDIR)$(DOCDIR)/examples
	install -m 644 completions/orch.bash $(DESTDIR)$(BASHCOMPDIR)/orch
	for p in $(filter-out orch,$(PROGRAMS)); do \
		ln -sf orch $(DESTDIR)$(BASHCOMPDIR)/$$p; done

uninstall:
	rm -f $(PROGRAMS:%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man1/%,$(wildcard man/*.1))
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man7/%,$(wildcard man/*.7))
	rm -f $(PROGRAMS:%=$(DESTDIR)$(BASHCOMPDIR)/%)
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build build-san bin

.PHONY: FORCE all bin deps check test demo install uninstall clean
