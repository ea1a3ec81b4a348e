# xturn — build, test, run. `make help` lists the targets.
# Out-of-tree objects: `make BUILD=/tmp/b` builds into another directory.
# `make SAN=1` builds everything with AddressSanitizer + UBSan; `V=1` is verbose.

BUILD ?= build
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH_TRIPLET := $(shell $(CC) -dumpmachine)

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
LDLIBS := -lxdp -lbpf -lmnl -lssl -lcrypto -lelf -lz -lpthread
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),thread)
CFLAGS += -fsanitize=thread
LDFLAGS += -fsanitize=thread
endif

BPF_CFLAGS := -O2 -g -target bpf -Wall -Wextra -Werror -Wno-unused-parameter \
	-I/usr/include/$(ARCH_TRIPLET) -Ibpf -MMD -MP

.DELETE_ON_ERROR:
.SECONDARY:

# ---- objects ---------------------------------------------------------------
# Every userspace module but the daemon's main() goes into one archive; tools
# and tests link it, so a module is written once and used everywhere.
LIB_SRCS := $(filter-out userspace/xturnd.c,$(wildcard userspace/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/libxturn.a
SKEL := $(BUILD)/xturn.skel.h
BPF_OBJ := $(BUILD)/bpf/xturn.bpf.o

XTURND := $(BUILD)/xturnd
TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(filter-out %.bpf.c,$(wildcard tools/*.c)))
# xturngen's live-frames injector: a tool's BPF program, not the relay's.
GEN_SKEL := $(BUILD)/xturngen_inject.skel.h
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

all: $(XTURND) $(TOOLS) $(BPF_OBJ)

$(BUILD)/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c
	$(call msg,CLANG,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/tools/%.bpf.o: tools/%.bpf.c
	$(call msg,CLANG,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(SKEL): $(BPF_OBJ)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name xturn_bpf > $@

$(GEN_SKEL): $(BUILD)/tools/xturngen_inject.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name xturngen_inject > $@

# Objects that embed or load the BPF program need the skeleton first.
$(BUILD)/userspace/fastpath.o $(BUILD)/tests/unit/test_xdp.o: $(SKEL)
$(BUILD)/tools/xturngen.o: $(GEN_SKEL)

$(XTURND): $(BUILD)/userspace/xturnd.o $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/%: $(BUILD)/tools/%.o $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

# ---- the two commands ----------------------------------------------------
DEPS := clang llvm bpftool libbpf-dev libxdp-dev libmnl-dev libcmocka-dev \
	libssl-dev libelf-dev zlib1g-dev pkg-config iproute2 coturn ethtool \
	libclang-rt-14-dev jq tcpdump
deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# coturn's package may start a system turnserver on 3478; the tests need the port.
	@-systemctl disable --now coturn >/dev/null 2>&1 || true

run: deps all
	$(XTURND) --demo

test: deps all $(UNIT_TESTS)
	$(Q)tests/run-all.sh $(BUILD)

unit: all $(UNIT_TESTS)
	$(Q)tests/run-all.sh $(BUILD) unit

FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -Iuserspace -Ibpf -D_GNU_SOURCE
FUZZ_SECONDS ?= 60
# Each target: its sources. fuzz_stun: the parser; fuzz_turn: the whole
# protocol logic behind a fake socket layer.
FUZZ_STUN_SRCS := userspace/stun.c
FUZZ_TURN_SRCS := userspace/turn.c userspace/alloc.c userspace/auth.c userspace/policy.c \
	userspace/stun.c userspace/addr.c userspace/log.c
fuzz: deps
	$(Q)mkdir -p $(BUILD)/fuzz/corpus-stun $(BUILD)/fuzz/corpus-turn
	$(CLANG) $(FUZZ_CFLAGS) tests/fuzz/fuzz_stun.c $(FUZZ_STUN_SRCS) \
		-o $(BUILD)/fuzz/fuzz_stun -lcrypto -lz
	$(CLANG) $(FUZZ_CFLAGS) tests/fuzz/fuzz_turn.c $(FUZZ_TURN_SRCS) \
		-o $(BUILD)/fuzz/fuzz_turn -lxdp -lbpf -lcrypto -lz -lpthread
	$(BUILD)/fuzz/fuzz_stun -max_total_time=$(FUZZ_SECONDS) -max_len=1500 \
		$(BUILD)/fuzz/corpus-stun tests/fuzz/seeds
	$(BUILD)/fuzz/fuzz_turn -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(BUILD)/fuzz/corpus-turn tests/fuzz/seeds-turn

bench: deps all
	$(Q)tests/bench/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD)

help:
	@echo "make run     build and start xturnd with the demo config"
	@echo "make test    build and run every test (unit, XDP packet, end-to-end)"
	@echo "make bench   xturn (XDP and userspace) vs coturn on one topology"
	@echo "make fuzz    libFuzzer on the STUN parser (FUZZ_SECONDS=60)"
	@echo "make deps    install missing Debian packages"
	@echo "options: BUILD=dir SAN=1 (ASan+UBSan) SAN=thread (TSan) V=1"

.PHONY: all deps run test unit fuzz bench clean help

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
