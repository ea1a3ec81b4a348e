# xturn — build, test, run. `make help` lists the targets.
# Out-of-tree objects: `make BUILD=/tmp/b` builds into another directory.
# `make SAN=1` builds everything with AddressSanitizer + UBSan; `V=1` is verbose.

BUILD ?= build
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
# Recursive (=), so it is computed when a BPF object is built, after deps has
# installed the compiler; uname when no compiler answers.
ARCH_TRIPLET = $(or $(shell $(CC) -print-multiarch 2>/dev/null),$(shell uname -m)-linux-gnu)

Q := @
ifeq ($(V),1)
Q :=
endif
msg = @printf '  %-8s %s\n' '$(1)' '$(2)'
ifeq ($(V),1)
msg =
endif

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -MMD -MP \
	-D_GNU_SOURCE -Iuserspace -Ibpf -I$(BUILD)
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),thread)
CFLAGS += -fsanitize=thread
LDFLAGS += -fsanitize=thread
endif

BPF_CFLAGS = -O2 -g -target bpf -Wall -Wextra -Werror -Wno-unused-parameter \
	-I/usr/include/$(ARCH_TRIPLET) -Ibpf -MMD -MP

.DELETE_ON_ERROR:
.SECONDARY:

# ---- objects ---------------------------------------------------------------
# One archive per layer of userspace/ (the README's "How it works" says what
# each holds); a binary links the layers it uses, with the libraries those
# need and no others.
layer_objs = $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(2),$(wildcard userspace/$(1)/*.c userspace/$(1)/*/*.c)))
COMMON := $(BUILD)/libcommon.a
TURN := $(BUILD)/libturn.a
CLIENT := $(BUILD)/libclient.a
DAEMON := $(BUILD)/libdaemon.a
LIBS_COMMON := -lbpf -lmnl -lcrypto -lz
LIBS_TURN := -lcrypto -lpthread -lz
LIBS_CLIENT := -lssl -lcrypto
LIBS_DAEMON := -lxdp -lbpf -lssl -lcrypto -lmnl -lpthread -lsystemd
LAYERS := $(DAEMON) $(TURN) $(CLIENT) $(COMMON)
LDLIBS := $(LIBS_DAEMON) $(LIBS_TURN) $(LIBS_CLIENT) $(LIBS_COMMON)
SKEL := $(BUILD)/xturn.skel.h
BPF_OBJ := $(BUILD)/bpf/xturn.bpf.o

XTURND := $(BUILD)/xturnd
TOOLS := $(BUILD)/xturngen $(BUILD)/xturnstat $(BUILD)/xturnctl
# xturngen's live-frames injector: a tool's BPF program, not the relay's.
GEN_SKEL := $(BUILD)/xturngen_inject.skel.h
# Tests in tiers: unit (no root, no daemon), kernel (BPF programs and the
# loader, as root), daemon (against a running xturnd); one program each.
TEST_TIERS := unit kernel daemon
TEST_PROGS := $(foreach t,$(TEST_TIERS),$(patsubst %.c,$(BUILD)/%,$(wildcard tests/$(t)/test_*.c)))
# make bench's own programs (built by make test too, so they cannot rot).
BENCH_PROGS := $(BUILD)/tests/bench/fpcost $(BUILD)/tests/bench/ceiling.bpf.o

# Man pages live beside their programs; one is made from the key table.
MAN_GEN := $(BUILD)/man/xturn.conf.5
all: $(XTURND) $(TOOLS) $(BPF_OBJ) $(MAN_GEN)

# The version: `git describe`, or "unknown" outside a git checkout. The
# header is rewritten only when it changes, so a rebuild stays incremental.
# (git without the user's or the system's configuration: the build reads no
# file outside the tree and its packages.)
VERSION ?= $(shell GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git describe --tags \
	--always --dirty 2>/dev/null || echo unknown)
$(BUILD)/xt_version.h: FORCE
	$(Q)mkdir -p $(@D)
	$(Q)echo '#define XT_VERSION "$(VERSION)"' > $@.tmp
	$(Q)cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@
$(BUILD)/userspace/common/version.o: $(BUILD)/xt_version.h
FORCE:

# The browser check's page, embedded in xturnd as a C string.
$(BUILD)/check_html.h: userspace/daemon/check.html
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q){ echo 'static const char check_html[] ='; \
		sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $<; echo ';'; } >$@.tmp && \
		mv $@.tmp $@
$(BUILD)/userspace/daemon/web.o: $(BUILD)/check_html.h

$(BUILD)/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/lib%.a:
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
$(COMMON): $(call layer_objs,common)
$(TURN): $(call layer_objs,turn)
$(CLIENT): $(call layer_objs,client)
$(DAEMON): $(call layer_objs,daemon,userspace/daemon/xturnd.c)

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h)
	$(call msg,CLANG,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Tools' and the bench's programs (not the relay's: that one is above).
$(BUILD)/%.bpf.o: %.bpf.c
	$(call msg,CLANG,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(SKEL): $(BPF_OBJ)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name xturn_bpf > $@

$(GEN_SKEL): $(BUILD)/tools/xturngen/xturngen_inject.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name xturngen_inject > $@

# Objects that embed or load the BPF program need the skeleton first.
$(patsubst %.c,$(BUILD)/%.o,$(wildcard userspace/daemon/fastpath/*.c)) $(BUILD)/tests/kernel/test_xdp.o: $(SKEL)
XTURNGEN_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out %.bpf.c,$(wildcard tools/xturngen/*.c)))
$(XTURNGEN_OBJS): $(GEN_SKEL)

# xturn.conf(5)'s keys come from the key table, through xturnd --help-man,
# so page and program cannot drift.
$(MAN_GEN): userspace/daemon/xturn.conf.5.in $(XTURND)
	$(call msg,MAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q){ sed '/^@KEYS@$$/,$$d' $<; $(XTURND) --help-man; sed '1,/^@KEYS@$$/d' $<; } | \
		sed "s/@VERSION@/$$($(XTURND) --version | cut -d' ' -f2)/" >$@.tmp && mv $@.tmp $@

link = $(call msg,LD,$@)
$(XTURND): $(BUILD)/userspace/daemon/xturnd.o $(DAEMON) $(TURN) $(COMMON)
	$(link)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_DAEMON) $(LIBS_TURN) $(LIBS_COMMON)

$(BUILD)/xturngen: $(XTURNGEN_OBJS) $(CLIENT) $(COMMON)
	$(link)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ -lpthread $(LIBS_CLIENT) $(LIBS_COMMON)

$(BUILD)/xturnstat: $(BUILD)/tools/xturnstat.o $(COMMON)
	$(link)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_COMMON)

$(BUILD)/xturnctl: $(BUILD)/tools/xturnctl.o $(COMMON)
	$(link)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_COMMON)

# The tests link every layer: each is a small program over a few of them.
$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LAYERS)
	$(link)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

# ---- the two commands ----------------------------------------------------
# Debian packages, installed by `make deps` when missing. tests/deps-audit.py
# (run by `make test`) fails if the build or a test opens a file of any other
# package that is not in the base system, so these lists cannot fall behind.
# What the build and `make run` need:
# (openssl: the library reads its configuration, and the README mints REST
# credentials with the command; libsystemd-dev: sd_notify; git: the version.)
DEPS_BUILD := make gcc libc6-dev clang bpftool libbpf-dev libxdp-dev libmnl-dev \
	libssl-dev libelf-dev zlib1g-dev openssl libsystemd-dev git
# What the tests need on top: cmocka, coturn (reference server, uclient, echo
# peer), the tools the scripts call, strace (the audit's trace), clang's
# sanitizer runtimes and llvm-symbolizer for their reports (SAN=1, make fuzz),
# systemd's systemd-analyze (the unit is verified; a minimal chroot has none),
# Prometheus' own parser for the metrics' text, groff for the man pages,
# Chromium driven by selenium for the browser check page, and the fonts it
# picks where they are installed (so every host renders with the same ones).
DEPS_TEST := libcmocka-dev coturn iproute2 ethtool procps jq tcpdump curl python3 \
	strace libclang-rt-14-dev llvm systemd python3-prometheus-client groff \
	chromium chromium-driver python3-selenium fonts-dejavu-extra
# `make fresh-check` only.
DEPS_FRESH := debootstrap iproute2 git

# Installs the missing packages of $(1). A service a package brings (coturn's
# turnserver) is not started: while apt-get runs, a policy-rc.d refuses every
# start (only if the host has none of its own). Nothing already on the host
# is stopped or reconfigured.
define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q '^install ok installed' || echo $$p; done); \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "make: missing packages; as root: apt-get install" $$missing >&2; exit 1; \
	fi; \
	echo "installing:" $$missing; \
	prc=/usr/sbin/policy-rc.d; \
	if [ ! -e $$prc ]; then \
		trap 'rm -f $$prc' EXIT; printf '#!/bin/sh\nexit 101\n' >$$prc; chmod 755 $$prc; \
	fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $$missing >/dev/null
endef

deps:
	$(call install_missing,$(DEPS_BUILD) $(DEPS_TEST))
deps-build:
	$(call install_missing,$(DEPS_BUILD))

# Each command installs first, then builds in a new make: what the Makefile
# asks of the tools ($(CC) above) is only asked once they exist.
run: deps-build
	$(Q)$(MAKE) --no-print-directory all
	$(XTURND) --demo --web-port=8080

# The tests see Debian's tools only (no /usr/local, pyenv or cargo shims), as
# on a fresh machine; the audit names any file that comes from elsewhere.
TEST_PATH := /usr/sbin:/usr/bin:/sbin:/bin
test: deps
	$(Q)$(MAKE) --no-print-directory check

# The package audit traces with ptrace, which LeakSanitizer cannot run
# under: sanitizer builds test without it (plain `make test` audits).
AUDIT_ENV := XT_DEPS_BUILD="$(DEPS_BUILD)" XT_DEPS_TEST="$(DEPS_TEST)"
ifneq ($(SAN),)
AUDIT_ENV :=
endif
check: all $(TEST_PROGS) $(BENCH_PROGS)
	$(Q)PATH=$(TEST_PATH) $(AUDIT_ENV) tests/run-all.sh $(BUILD)

test-progs: $(TEST_PROGS)

unit: all $(TEST_PROGS)
	$(Q)PATH=$(TEST_PATH) tests/run-all.sh $(BUILD) unit

# `make test` in a minimal Debian 12 chroot that has nothing but make:
# proves that deps installs everything. The base system is cached in
# FRESH_CACHE; each run starts from a new copy of it.
FRESH_CACHE ?= /var/tmp/xturn-fresh
fresh-check:
	$(call install_missing,$(DEPS_FRESH))
	$(Q)tests/fresh-check.sh $(FRESH_CACHE)

FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -Iuserspace -Ibpf -D_GNU_SOURCE
FUZZ_SECONDS ?= 60
# Each target: its sources. fuzz_stun: the parser; fuzz_turn: the whole
# protocol logic behind a fake socket layer.
FUZZ_STUN_SRCS := userspace/common/stun.c
FUZZ_TURN_SRCS := $(wildcard userspace/turn/*.c) userspace/common/stun.c userspace/common/addr.c \
	userspace/common/log.c
fuzz: deps
	$(Q)$(MAKE) --no-print-directory $(LAYERS) $(SKEL)
	$(Q)mkdir -p $(BUILD)/fuzz/corpus-stun $(BUILD)/fuzz/corpus-turn $(BUILD)/fuzz/corpus-xdp
	$(CLANG) $(FUZZ_CFLAGS) tests/fuzz/fuzz_stun.c $(FUZZ_STUN_SRCS) \
		-o $(BUILD)/fuzz/fuzz_stun -lcrypto -lz
	$(CLANG) $(FUZZ_CFLAGS) tests/fuzz/fuzz_turn.c $(FUZZ_TURN_SRCS) \
		-o $(BUILD)/fuzz/fuzz_turn -lcrypto -lz -lpthread
	$(BUILD)/fuzz/fuzz_stun -max_total_time=$(FUZZ_SECONDS) -max_len=1500 \
		$(BUILD)/fuzz/corpus-stun tests/fuzz/seeds
	$(BUILD)/fuzz/fuzz_turn -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(BUILD)/fuzz/corpus-turn tests/fuzz/seeds-turn
	@# The XDP program: test_xdp's namespace, maps and checks, frames from
	@# libFuzzer (XT_FUZZ); runs as root.
	$(CLANG) $(FUZZ_CFLAGS) -DXT_FUZZ -I$(BUILD) tests/kernel/test_xdp.c $(LAYERS) \
		-o $(BUILD)/fuzz/fuzz_xdp $(LDLIBS) -lcmocka
	$(BUILD)/fuzz/fuzz_xdp -max_total_time=$(FUZZ_SECONDS) -max_len=1600 \
		$(BUILD)/fuzz/corpus-xdp tests/fuzz/seeds-xdp

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_PROGS)
	$(Q)PATH=$(TEST_PATH) tests/bench/bench.sh $(BUILD)

# ---- install ------------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: the binaries, the systemd unit
# (PREFIX in its paths), and a commented /etc/xturn/xturn.conf that is never
# overwritten. Into the real root (no DESTDIR) it also makes the system user
# xturn the unit runs as, if missing. make uninstall keeps the configuration.
PREFIX ?= /usr/local
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
CONFDIR := /etc/xturn
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(CONFDIR)
	install -m 0755 $(XTURND) $(DESTDIR)$(PREFIX)/sbin/xturnd
	install -m 0755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 tools/xturngen/xturngen.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN_GEN) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 userspace/daemon/xturnd.8 tools/xturnctl.8 tools/xturnstat.8 \
		$(DESTDIR)$(MANDIR)/man8/
	sed 's|@PREFIX@|$(PREFIX)|g' userspace/daemon/xturnd.service >$(DESTDIR)$(UNITDIR)/xturnd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/xturnd.service
	@if [ -e $(DESTDIR)$(CONFDIR)/xturn.conf ]; then \
		echo "$(DESTDIR)$(CONFDIR)/xturn.conf exists: kept"; \
	else \
		install -m 0640 userspace/daemon/xturn.conf $(DESTDIR)$(CONFDIR)/xturn.conf; \
	fi
	@if [ -z "$(DESTDIR)" ]; then \
		id -u xturn >/dev/null 2>&1 || useradd --system --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin xturn; \
		chgrp xturn $(CONFDIR)/xturn.conf; \
		systemctl daemon-reload 2>/dev/null || true; \
		echo "installed; edit $(CONFDIR)/xturn.conf, then: systemctl enable --now xturnd"; \
	fi
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/xturnd $(DESTDIR)$(PREFIX)/bin/xturngen \
		$(DESTDIR)$(PREFIX)/bin/xturnstat $(DESTDIR)$(PREFIX)/bin/xturnctl \
		$(DESTDIR)$(UNITDIR)/xturnd.service $(DESTDIR)$(MANDIR)/man1/xturngen.1 \
		$(DESTDIR)$(MANDIR)/man5/xturn.conf.5 $(DESTDIR)$(MANDIR)/man8/xturnd.8 \
		$(DESTDIR)$(MANDIR)/man8/xturnctl.8 $(DESTDIR)$(MANDIR)/man8/xturnstat.8
	@echo "$(DESTDIR)$(CONFDIR)/xturn.conf kept (remove it by hand)"

clean:
	rm -rf $(BUILD)

help:
	@echo "make run     build and start xturnd with the demo config"
	@echo "make test    build and run every test (unit, kernel, daemon, end-to-end)"
	@echo "make unit    the unit tier only (no root needed)"
	@echo "make bench   xturn (XDP and userspace) vs coturn on one topology"
	@echo "make fuzz    libFuzzer: STUN parser, protocol logic, XDP program (FUZZ_SECONDS=60)"
	@echo "make deps    install missing Debian packages (deps-build: only the build's)"
	@echo "make install binaries, systemd unit, /etc/xturn/xturn.conf (PREFIX=, DESTDIR=); make uninstall"
	@echo "make fresh-check  make test in a new minimal Debian 12 chroot"
	@echo "options: BUILD=dir SAN=1 (ASan+UBSan) SAN=thread (TSan) V=1"

.PHONY: FORCE install uninstall all deps deps-build run test check unit test-progs fresh-check fuzz bench clean help

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
