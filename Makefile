# bpfsvc build. `make` builds build/bpfsvc; `make test` and `make demo` first install the
# Debian packages they need (`make deps`). V=1 shows the commands.

CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
BUILD := build

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Packages a fresh Debian 12 needs for building, testing and the demo.
DEB_PKGS := make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config \
	libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev libmicrohttpd-dev uthash-dev \
	iproute2 iptables nftables curl procps util-linux python3 openssl time gnuplot-nox \
	libclang-rt-14-dev python3-h2 python3-kubernetes

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARN := -Wall -Wextra -Werror
CFLAGS_COMMON := -std=gnu11 -D_GNU_SOURCE -g -O2 $(WARN) -Iinclude -Iuser -I$(BUILD) \
	-DBPFSVC_VERSION='"$(VERSION)"' -MMD -MP
LDLIBS := -lbpf -lelf -lz -ljansson -lyaml -lcurl -lcrypto
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

USER_SRCS := $(wildcard user/*.c)
LIB_SRCS := $(filter-out user/main.c,$(USER_SRCS))
USER_OBJS := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(USER_SRCS))
LIB_OBJS := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
ASAN_OBJS := $(patsubst user/%.c,$(BUILD)/asan/obj/%.o,$(USER_SRCS))
ASAN_LIB_OBJS := $(patsubst user/%.c,$(BUILD)/asan/obj/%.o,$(LIB_SRCS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

# libFuzzer targets: clang only (-fsanitize=fuzzer), so the user objects are built a third
# time with clang and coverage instrumentation. `make fuzz` runs each for FUZZ_TIME seconds.
FUZZ_CC ?= $(CLANG)
FUZZ_TIME ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_OBJS := $(patsubst user/%.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

.PHONY: all deps test unit e2e demo bench bench-full clean vmlinux asan tools fuzz fuzz-build
.DEFAULT_GOAL := all
# Keep the BPF object and skeleton: they are intermediates of every user object.
.SECONDARY:

all: $(BUILD)/bpfsvc tools

tools: $(TOOL_BINS) $(BENCH_BINS)

asan: $(BUILD)/asan/bpfsvc $(UNIT_BINS)

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

# bpf/lib/ holds what several BPF programs share; -MMD tracks the headers each one includes.
$(BUILD)/%.bpf.o: bpf/%.bpf.c include/bpfsvc_abi.h vmlinux/vmlinux.h | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -Iinclude -Ibpf -Ivmlinux \
		-MMD -MP -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: user/%.c $(SKELS) | $(BUILD)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c $< -o $@

$(BUILD)/asan/obj/%.o: user/%.c $(SKELS) | $(BUILD)/asan/obj
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) $(CFLAGS_COMMON) $(SAN) $(CFLAGS) -c $< -o $@

$(BUILD)/bpfsvc: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/asan/bpfsvc: $(ASAN_OBJS)
	$(call msg,LINK-SAN,$@)
	$(Q)$(CC) $(SAN) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/asan/tests/%: tests/unit/%.c $(ASAN_LIB_OBJS) | $(BUILD)/asan/tests
	$(call msg,UNIT,$@)
	$(Q)$(CC) $(CFLAGS_COMMON) $(SAN) -MF $@.d $< $(ASAN_LIB_OBJS) $(LDLIBS) -o $@

$(BUILD)/fuzz/obj/%.o: user/%.c $(SKELS) | $(BUILD)/fuzz/obj
	$(call msg,CC-FUZZ,$@)
	$(Q)$(FUZZ_CC) $(CFLAGS_COMMON) $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(CFLAGS) -c $< -o $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) | $(BUILD)/fuzz/obj
	$(call msg,FUZZER,$@)
	$(Q)$(FUZZ_CC) $(CFLAGS_COMMON) $(FUZZ_SAN) -fsanitize=fuzzer -MF $@.d $< $(FUZZ_OBJS) \
		$(LDLIBS) -o $@

$(BUILD)/tools/%: tests/tools/%.c | $(BUILD)/tools
	$(call msg,TOOL,$@)
	$(Q)$(CC) -std=gnu11 -g -O2 $(WARN) -MMD -MP $< -o $@

$(BUILD)/bench/%: bench/%.c | $(BUILD)/bench
	$(call msg,BENCH,$@)
	$(Q)$(CC) -std=gnu11 -D_GNU_SOURCE -g -O2 $(WARN) -MMD -MP $< -o $@ -lm

$(BUILD) $(BUILD)/obj $(BUILD)/asan/obj $(BUILD)/asan/tests $(BUILD)/tools $(BUILD)/bench \
		$(BUILD)/fuzz/obj:
	$(Q)mkdir -p $@

# Regenerate the committed vmlinux.h from the running kernel's BTF.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h

unit: deps
	$(Q)$(MAKE) --no-print-directory asan
	$(Q)tests/run.sh unit

e2e: deps
	$(Q)$(MAKE) --no-print-directory all asan
	$(Q)tests/run.sh e2e

test: deps
	$(Q)$(MAKE) --no-print-directory all asan fuzz-build
	$(Q)tests/run.sh all

fuzz-build: $(FUZZ_BINS)

# New corpus entries and crash artifacts go under $(BUILD)/fuzz, never into tests/fuzz/corpus.
fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)tests/fuzz/run.sh $(BUILD)/fuzz $(FUZZ_TIME)

# Benchmarks (root), bpfsvc side by side with kube-proxy's iptables and nftables rules:
# quick (N up to 10000, under 10 minutes) and full (N up to 100000).
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/bench.sh --quick

bench-full: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/bench.sh --full

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)deploy/demo.sh

clean:
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/*.bpf.d $(BUILD)/obj/*.d $(BUILD)/asan/obj/*.d $(BUILD)/asan/tests/*.d $(BUILD)/tools/*.d $(BUILD)/bench/*.d \
	$(BUILD)/fuzz/obj/*.d $(BUILD)/fuzz/*.d)
