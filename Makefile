# felhom-agent — top-level build.
#
#   make                      build/felhom-agent (and other binaries in build/)
#   make SANITIZE=address,undefined   same, instrumented, in build/san-address,undefined/
#   make SANITIZE=thread      ThreadSanitizer build
#   make check                every test, plain and under ASan+UBSan; ends "N passed, N failed"
#   make bench                benchmarks (figures, never pass/fail)
#   make demo                 --selftest against the bundled simulated Proxmox host
#   make deps                 install the Debian 12 packages the build and tests need

.DELETE_ON_ERROR:
.SUFFIXES:

CC       ?= cc
RAGEL    ?= ragel
PYTHON   ?= python3
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-unknown)

DEB_PKGS := build-essential make pkg-config ragel libcurl4-openssl-dev libwolfssl-dev \
            liblmdb-dev libyajl-dev python3 openssl ca-certificates binutils git \
            openssh-client systemd sudo curl e2fsprogs util-linux mount diffutils

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wmissing-declarations -Wformat=2 -Wformat-security -Wvla -Wwrite-strings \
        -Wpointer-arith -Wcast-qual -Wcast-align -Wundef -Wnested-externs \
        -Wold-style-definition -Wredundant-decls -Wdeclaration-after-statement \
        -Wbad-function-cast -Wfloat-equal -Wimplicit-fallthrough -Wnull-dereference \
        -Wdouble-promotion -Wconversion -Wno-sign-conversion

HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
LDHARDEN := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack

comma := ,
ifeq ($(SANITIZE),)
  BUILD   := build
  OPT     := -O2
  SANFLAGS :=
else
  BUILD   := build/san-$(subst $(comma),-,$(SANITIZE))
  OPT     := -O1 -fno-omit-frame-pointer
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
  ifeq ($(SANITIZE),thread)
    HARDEN := -fPIE
  endif
endif

CPPFLAGS += -Iinclude -Igen -D_GNU_SOURCE -DFH_VERSION='"$(VERSION)"'
CFLAGS   += -std=c17 -g $(OPT) $(WARN) $(HARDEN) $(SANFLAGS) -MMD -MP
LDFLAGS  += $(LDHARDEN) $(SANFLAGS)
LDLIBS   += -lcurl -lwolfssl -llmdb -lyajl -lpthread -lm

# Ragel: machines/NAME.rl -> gen/NAME.c. Every file a machine imports is a
# prerequisite (RL_DEPS_NAME), so editing it regenerates the machine.
RL_SRC  := $(wildcard machines/*.rl)
RL_GEN  := $(patsubst machines/%.rl,gen/%.c,$(RL_SRC))
RL_INC  := $(wildcard machines/*.rlh)

gen/%.c: machines/%.rl $(RL_INC) | gen
	$(RAGEL) -G2 -C -I machines -o $@ $<

gen $(BUILD) $(BUILD)/obj $(BUILD)/obj/gen $(BUILD)/obj/test:
	@mkdir -p $@

# Library objects: everything in src/ except main, plus the generated machines.
LIB_SRC  := $(filter-out src/main.c src/opsign.c,$(wildcard src/*.c))
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) \
            $(patsubst gen/%.c,$(BUILD)/obj/gen/%.o,$(RL_GEN))

# The version is baked into objects: they rebuild when it changes.
VERSION_STAMP := $(BUILD)/version.stamp
$(VERSION_STAMP): FORCE | $(BUILD)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
FORCE:

$(BUILD)/obj/%.o: src/%.c $(RL_GEN) $(VERSION_STAMP) | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/gen/%.o: gen/%.c | $(BUILD)/obj/gen
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/test/%.o: test/%.c $(RL_GEN) $(VERSION_STAMP) | $(BUILD)/obj/test
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itest -c -o $@ $<

$(BUILD)/libfelhom.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/felhom-agent: $(BUILD)/obj/main.o $(BUILD)/libfelhom.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Programs besides the agent: src/NAME.c with its own main() -> build/felhom-NAME.
PROG_SRC := $(wildcard src/opsign.c)
PROGS    := $(patsubst src/%.c,$(BUILD)/felhom-%,$(PROG_SRC))
$(PROGS): $(BUILD)/felhom-%: $(BUILD)/obj/%.o $(BUILD)/libfelhom.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Tests: each test/test_*.c is one program, linked with the harness.
TEST_SRC  := $(wildcard test/test_*.c)
TEST_BIN  := $(patsubst test/%.c,$(BUILD)/%,$(TEST_SRC))
BENCH_SRC := $(wildcard test/bench_*.c)
BENCH_BIN := $(patsubst test/%.c,$(BUILD)/%,$(BENCH_SRC))
HARNESS   := $(patsubst test/%.c,$(BUILD)/obj/test/%.o,$(filter-out test/test_% test/bench_% test/fuzz_%,$(wildcard test/*.c)))

$(TEST_BIN) $(BENCH_BIN): $(BUILD)/%: $(BUILD)/obj/test/%.o $(HARNESS) $(BUILD)/libfelhom.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz targets: test/fuzz_NAME.c. In every build each is also linked with
# test/fuzz_replay.c into build/test_fuzz_NAME, which replays the corpus in
# vectors/fuzz/NAME/ (and the golden vectors it names) as part of make check.
# `make fuzz` builds them with clang's libFuzzer and runs each for FUZZ_SECONDS.
FUZZ_SRC    := $(filter-out test/fuzz_replay.c,$(wildcard test/fuzz_*.c))
FUZZ_REPLAY := $(patsubst test/fuzz_%.c,$(BUILD)/test_fuzz_%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60
$(FUZZ_REPLAY): $(BUILD)/test_fuzz_%: $(BUILD)/obj/test/fuzz_%.o $(BUILD)/obj/test/fuzz_replay.o $(HARNESS) $(BUILD)/libfelhom.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/test/fuzz_replay.o: test/fuzz_replay.c | $(BUILD)/obj/test
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itest -c -o $@ $<

fuzz: deps-check $(RL_GEN)
	@command -v clang >/dev/null || { echo "make fuzz needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p build/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c | sed 's/^fuzz_//'); \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DFH_VERSION='"fuzz"' -Iinclude -Igen -Itest \
	    $$f $(filter-out src/main.c src/opsign.c,$(wildcard src/*.c)) $(RL_GEN) -o build/fuzz/$$n $(LDLIBS) || exit 1; \
	  mkdir -p build/fuzz/corpus-$$n; \
	  echo "== fuzz $$n for $(FUZZ_SECONDS)s"; \
	  build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=20000 build/fuzz/corpus-$$n vectors/fuzz/$$n 2>&1 | tail -3 || exit 1; \
	done

all: $(BUILD)/felhom-agent $(PROGS)
.DEFAULT_GOAL := all

tests: all $(TEST_BIN) $(FUZZ_REPLAY)
benches: all $(BENCH_BIN)

# make check: the plain build, then ASan+UBSan. test/run prints the one summary line.
# Concurrency tests, also run under ThreadSanitizer.
TSAN_TESTS := test_store test_nonce_kill test_tlspin test_hub test_daemon test_outbox test_jrnl \
              test_lapi test_lapi_hostile test_recon test_gate test_recon_crash test_backup test_disk \
              test_wipe_loop

check: deps-check
	$(MAKE) --no-print-directory tests
	$(MAKE) --no-print-directory SANITIZE=address,undefined tests
	rm -rf build/san-thread/test_*
	$(MAKE) --no-print-directory SANITIZE=thread build/san-thread/felhom-agent build/san-thread/felhom-opsign \
	  $(addprefix build/san-thread/,$(TSAN_TESTS))
	$(PYTHON) test/run build build/san-address-undefined build/san-thread

# Reference servers and loaders for the benchmarks only (not for make check).
BENCH_PKGS := wrk nginx-light

bench: deps-check
	@missing=""; for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  else echo "benchmarks compare against:$$missing (apt-get install -y$$missing)"; fi; fi
	$(MAKE) --no-print-directory benches
	$(PYTHON) test/bench build

demo: deps-check all
	$(PYTHON) test/demo build/felhom-agent

deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PKGS); \
	else \
	  echo "run as root: apt-get update && apt-get install -y --no-install-recommends $(DEB_PKGS)"; exit 1; \
	fi

# Installs what is missing (as root), or says exactly what to install.
deps-check:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "missing packages:$$missing"; $(MAKE) --no-print-directory deps; fi

clean:
	rm -rf build gen

.PHONY: all tests benches check bench demo deps deps-check clean fuzz FORCE

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/gen/*.d $(BUILD)/obj/test/*.d)
