# muxring build.  GNU make; Linux; needs liburing (and cmocka for tests).
#
#   make                 libmuxring.a/.so, libmuxring-tls.a/.so, tools/*,
#                        examples/*,
#                        muxbench
#   make test            deps, then everything under ASan+UBSan, run all tests
#                        (make test T="frame session" runs only those)
#   make bench           deps, then build and run build/muxbench (BENCH_ARGS=...)
#   make valgrind        deps and valgrind, then the tests without sanitizers
#                        under memcheck (build/valgrind): 0 errors, 0 leaks
#   make fuzz            clang + libFuzzer: build/fuzz/fuzz_*, each run for
#                        FUZZ_SECONDS (default 30; FUZZ_ARGS=... adds options)
#   make deps            apt-get install what is missing (quiet when nothing is)
#   make install         PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, PKGCONFIGDIR,
#                        BINDIR (the programs), MANDIR (man/*.1)
#   make uninstall | clean
#
# Sources are found by wildcard, so a new file needs no edit here:
#   src/LAYER/*.c        the library, one folder per layer (wire, engine,
#                        uring, api); tests/check_layers enforces the order
#   src/tls/*.c          libmuxring-tls (OpenSSL), a separate library on top
#                        of the public API, so libmuxring needs no OpenSSL
#   tools/NAME.c         one program each -> build/NAME (each must have main)
#   tools/common/*.c     shared CLI helpers, linked into every program
#   examples/NAME.c      one program each -> build/examples/NAME; their
#                        sanitizer builds (build/asan/examples/NAME) are run
#                        by tests/test_examples.c
#   bench/*.c            linked together  -> build/muxbench
#   tests/test_NAME.c    one cmocka binary each -> build/test/test_NAME,
#                        linked with every tests/support/*.c
#
# Tests run with the repository root as working directory and with
# MUXRING_BUILD_DIR set to the absolute path of the sanitizer tree
# (build/asan), where the sanitizer builds of the tools live, e.g.
# $MUXRING_BUILD_DIR/muxcat.  Tests link the static library, so they can
# reach internal (hidden) functions as well as the public API.
#
# V=1 shows full command lines.

VERSION    := 0.1.0
SOVERSION  := 0

BUILD      ?= build
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man

PKG_CONFIG ?= pkg-config
CFLAGS     ?= -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow \
              -Wstrict-prototypes -Wmissing-prototypes
# Appended after CFLAGS, so the later -O1 wins over -O2.
SANFLAGS   ?= -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
SAN_CFLAGS := $(CFLAGS) $(SANFLAGS) -O1 -g
BENCH_ARGS ?=
TEST_TIMEOUT ?= 300

# pkg-config when it knows the package; plain -l otherwise (the headers
# live in /usr/include on Debian, so no -I is needed in the fallback).
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs   = $(or $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null),$(2))
URING_CFLAGS  := $(call pc_cflags,liburing)
URING_LIBS    := $(call pc_libs,liburing,-luring)
CMOCKA_CFLAGS := $(call pc_cflags,cmocka)
CMOCKA_LIBS   := $(call pc_libs,cmocka,-lcmocka)
SSL_CFLAGS    := $(call pc_cflags,openssl)
SSL_LIBS      := $(call pc_libs,openssl,-lssl -lcrypto)

# Flags the build depends on; not meant to be overridden.
CPPFLAGS_ALL := -Iinclude -Isrc $(URING_CFLAGS) $(SSL_CFLAGS) $(CPPFLAGS)
DEPFLAGS     := -MMD -MP
# One PIC object set serves both libraries; hidden by default so that only
# MUXRING_API declarations reach the .so's dynamic symbol table.
LIBOBJ_FLAGS := -fPIC -fvisibility=hidden
TEST_CPPFLAGS := -Itests -Itests/support $(CMOCKA_CFLAGS)

LIB_SRCS     := $(sort $(filter-out src/tls/%,$(wildcard src/*/*.c)))
TLS_SRCS     := $(sort $(wildcard src/tls/*.c))
TOOL_SRCS    := $(sort $(wildcard tools/*.c))
TOOL_COMMON_SRCS := $(sort $(wildcard tools/common/*.c))
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
BENCH_SRCS   := $(sort $(wildcard bench/*.c))
TEST_SRCS    := $(sort $(wildcard tests/test_*.c))
SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c))

OBJ  := $(BUILD)/obj
# The test tree: sanitizers by default; `make valgrind` builds it again
# without them (SAN_TREE=valgrind SANFLAGS=), since memcheck cannot run a
# program built with ASan.
SAN_TREE ?= asan
SAN  := $(BUILD)/$(SAN_TREE)
SOBJ := $(SAN)/obj
TEST_DIR := $(if $(filter asan,$(SAN_TREE)),$(BUILD)/test,$(SAN)/test)

LIB_OBJS   := $(LIB_SRCS:%.c=$(OBJ)/%.o)
TLS_OBJS   := $(TLS_SRCS:%.c=$(OBJ)/%.o)
TOOL_OBJS  := $(TOOL_SRCS:%.c=$(OBJ)/%.o)
TOOL_COMMON_OBJS := $(TOOL_COMMON_SRCS:%.c=$(OBJ)/%.o)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(OBJ)/%.o)

LIB_A       := $(BUILD)/libmuxring.a
LIB_SO_REAL := libmuxring.so.$(VERSION)
LIB_SONAME  := libmuxring.so.$(SOVERSION)
LIB_SO      := $(BUILD)/$(LIB_SO_REAL)
LIB_LINKS   := $(BUILD)/$(LIB_SONAME) $(BUILD)/libmuxring.so
TLS_A       := $(BUILD)/libmuxring-tls.a
TLS_SO_REAL := libmuxring-tls.so.$(VERSION)
TLS_SONAME  := libmuxring-tls.so.$(SOVERSION)
TLS_SO      := $(BUILD)/$(TLS_SO_REAL)
TLS_LINKS   := $(BUILD)/$(TLS_SONAME) $(BUILD)/libmuxring-tls.so
# What every program links: TLS first, since it calls the core library.
PROG_LIBS    = $(TLS_A) $(LIB_A) $(URING_LIBS) $(SSL_LIBS) -lpthread
TOOL_BINS   := $(TOOL_SRCS:tools/%.c=$(BUILD)/%)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
BENCH_BIN   := $(if $(BENCH_SRCS),$(BUILD)/muxbench)
MAN_PAGES   := $(sort $(wildcard man/*.1))

SAN_LIB_OBJS  := $(LIB_SRCS:%.c=$(SOBJ)/%.o)
SAN_TLS_OBJS  := $(TLS_SRCS:%.c=$(SOBJ)/%.o)
SAN_TOOL_OBJS := $(TOOL_SRCS:%.c=$(SOBJ)/%.o)
SAN_TOOL_COMMON_OBJS := $(TOOL_COMMON_SRCS:%.c=$(SOBJ)/%.o)
SAN_SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(SOBJ)/%.o)
SAN_TEST_OBJS := $(TEST_SRCS:%.c=$(SOBJ)/%.o)
SAN_LIB_A     := $(SAN)/libmuxring.a
SAN_TLS_A     := $(SAN)/libmuxring-tls.a
SAN_PROG_LIBS  = $(SAN_TLS_A) $(SAN_LIB_A) $(URING_LIBS) $(SSL_LIBS) -lpthread
SAN_TOOL_BINS := $(TOOL_SRCS:tools/%.c=$(SAN)/%)
SAN_EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(SAN)/examples/%)
TEST_BINS     := $(TEST_SRCS:tests/%.c=$(TEST_DIR)/%)
RUN_TESTS     := $(if $(T),$(filter $(addprefix $(TEST_DIR)/test_,$(T)),$(TEST_BINS)),$(TEST_BINS))

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2);
endif

.SUFFIXES:
.DELETE_ON_ERROR:
.PHONY: all libs tools examples test check valgrind vgcheck bench fuzz deps \
        install uninstall clean help FORCE

all: libs tools examples $(BENCH_BIN)
libs: $(LIB_A) $(LIB_SO) $(LIB_LINKS) $(TLS_A) $(TLS_SO) $(TLS_LINKS)
tools: $(TOOL_BINS)
examples: $(EXAMPLE_BINS)

# --- release tree --------------------------------------------------------

# Rebuild everything when the compiler or flags change (CC=clang make after
# a gcc build must really compile with clang).  The file is rewritten only
# when its content differs, so its mtime marks the last change.
$(BUILD)/.flags: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(CC) $(CPPFLAGS_ALL) $(CFLAGS) $(LDFLAGS) $(LDLIBS))' \
	  | cmp -s - $@ || printf '%s\n' '$(subst ','\'',$(CC) $(CPPFLAGS_ALL) $(CFLAGS) $(LDFLAGS) $(LDLIBS))' > $@

$(LIB_OBJS) $(TLS_OBJS): EXTRA_CFLAGS := $(LIBOBJ_FLAGS)

$(OBJ)/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(CPPFLAGS_ALL) $(CFLAGS) $(EXTRA_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

# -z defs: an unresolved symbol is a link error now, not a load error later.
$(LIB_SO): $(LIB_OBJS)
	$(call say,LD,$@)$(CC) -shared -Wl,-soname,$(LIB_SONAME) -Wl,-z,defs $(LDFLAGS) \
	  -o $@ $^ $(URING_LIBS) -lpthread $(LDLIBS)

$(BUILD)/$(LIB_SONAME): $(LIB_SO)
	$(Q)ln -sf $(LIB_SO_REAL) $@
$(BUILD)/libmuxring.so: $(BUILD)/$(LIB_SONAME)
	$(Q)ln -sf $(LIB_SONAME) $@

$(TLS_A): $(TLS_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

# Linked against libmuxring.so: only its public (exported) calls resolve,
# which keeps libmuxring-tls on the public interface.
$(TLS_SO): $(TLS_OBJS) $(LIB_SO)
	$(call say,LD,$@)$(CC) -shared -Wl,-soname,$(TLS_SONAME) -Wl,-z,defs $(LDFLAGS) \
	  -o $@ $(TLS_OBJS) $(LIB_SO) $(SSL_LIBS) -lpthread $(LDLIBS)

$(BUILD)/$(TLS_SONAME): $(TLS_SO)
	$(Q)ln -sf $(TLS_SO_REAL) $@
$(BUILD)/libmuxring-tls.so: $(BUILD)/$(TLS_SONAME)
	$(Q)ln -sf $(TLS_SONAME) $@

# Programs link the static libraries: no LD_LIBRARY_PATH needed to run them
# from the build tree.
$(TOOL_BINS): $(BUILD)/%: $(OBJ)/tools/%.o $(TOOL_COMMON_OBJS) $(LIB_A) $(TLS_A)
	$(call say,LD,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TOOL_COMMON_OBJS) \
	  $(PROG_LIBS) $(LDLIBS)

# Examples build like programs of their own: only the public headers.
$(EXAMPLE_BINS): $(BUILD)/examples/%: $(OBJ)/examples/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(URING_LIBS) -lpthread $(LDLIBS)

$(BUILD)/muxbench: $(BENCH_OBJS) $(LIB_A) $(TLS_A)
	$(call say,LD,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BENCH_OBJS) \
	  $(PROG_LIBS) -lm $(LDLIBS)

# --- sanitizer tree (tests) ----------------------------------------------

$(SAN)/.flags: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(CC) $(CPPFLAGS_ALL) $(TEST_CPPFLAGS) $(SAN_CFLAGS) $(LDFLAGS) $(LDLIBS))' \
	  | cmp -s - $@ || printf '%s\n' '$(subst ','\'',$(CC) $(CPPFLAGS_ALL) $(TEST_CPPFLAGS) $(SAN_CFLAGS) $(LDFLAGS) $(LDLIBS))' > $@

$(SAN_LIB_OBJS) $(SAN_TLS_OBJS): EXTRA_CFLAGS := $(LIBOBJ_FLAGS)
$(SAN_SUPPORT_OBJS) $(SAN_TEST_OBJS): EXTRA_CFLAGS := $(TEST_CPPFLAGS)

$(SOBJ)/%.o: %.c $(SAN)/.flags
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(CPPFLAGS_ALL) $(SAN_CFLAGS) $(EXTRA_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(SAN_LIB_A): $(SAN_LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(SAN_TLS_A): $(SAN_TLS_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(SAN_TOOL_BINS): $(SAN)/%: $(SOBJ)/tools/%.o $(SAN_TOOL_COMMON_OBJS) $(SAN_LIB_A) $(SAN_TLS_A)
	$(call say,LD,$@)$(CC) $(SAN_CFLAGS) $(LDFLAGS) -o $@ $< $(SAN_TOOL_COMMON_OBJS) \
	  $(SAN_PROG_LIBS) $(LDLIBS)

$(SAN_EXAMPLE_BINS): $(SAN)/examples/%: $(SOBJ)/examples/%.o $(SAN_LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(SAN_CFLAGS) $(LDFLAGS) -o $@ $< $(SAN_LIB_A) $(URING_LIBS) -lpthread $(LDLIBS)

$(TEST_BINS): $(TEST_DIR)/%: $(SOBJ)/tests/%.o $(SAN_SUPPORT_OBJS) $(SAN_LIB_A) $(SAN_TLS_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(SAN_CFLAGS) $(LDFLAGS) -o $@ $< $(SAN_SUPPORT_OBJS) \
	  $(CMOCKA_LIBS) $(SAN_PROG_LIBS) -lm $(LDLIBS)

# --- running -------------------------------------------------------------

# A sub-make, so that pkg-config is asked again after deps installed things.
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory check

# Runs every binary of $(RUN_TESTS), even after one fails, each with
# $(1) in front (a wrapper such as valgrind, or nothing) and the layer check
# first when $(2) is set; the last line is the tally.
define run_tests
	@if [ -n '$(T)' ] && [ -z '$(RUN_TESTS)' ]; then \
	  echo "no test matches T=$(T)" >&2; exit 1; fi; \
	pass=0; fail=0; failed=; \
	if [ -n '$(2)' ]; then \
	  echo "=== tests/check_layers.sh"; \
	  if sh tests/check_layers.sh $(OBJ); then pass=$$((pass + 1)); \
	  else fail=$$((fail + 1)); failed="$$failed check_layers"; fi; \
	fi; \
	for t in $(RUN_TESTS); do \
	  echo "=== $$t"; \
	  if MUXRING_BUILD_DIR='$(abspath $(SAN))' \
	     ASAN_OPTIONS=detect_leaks=1 \
	     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	     timeout $(TEST_TIMEOUT) $(1) $$t; then \
	    pass=$$((pass + 1)); \
	  else \
	    rc=$$?; fail=$$((fail + 1)); failed="$$failed $${t##*/}"; \
	    if [ $$rc -eq 124 ]; then why="timed out after $(TEST_TIMEOUT)s"; else why="exit $$rc"; fi; \
	    echo "*** FAILED: $$t ($$why)"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; fi; \
	echo "tests: $$pass passed, $$fail failed"; \
	[ $$fail -eq 0 ]
endef

# Release build too: -O2 finds warnings -O1 does not, and -Werror holds.
check: all $(SAN_TOOL_BINS) $(SAN_EXAMPLE_BINS) $(RUN_TESTS)
	$(call run_tests,,layers)

# memcheck over the test binaries (the tools and examples they start run
# natively, from the same sanitizer-free tree, built with MUXRING_MEMCHECK:
# src/uring/kernel_wrote.h). A definite or indirect leak is an error;
# "possibly lost" and "still reachable" are not, since libc, OpenSSL and
# cmocka keep blocks for the life of the process. MUXRING_VALGRIND=1
# stretches the tests' time budgets and slices the waits of loops that run
# in threads of their own (tests/support/valgrind_run.h). Left out:
# test_loop_quiet, whose subject is how many io_uring_enter calls two
# threads make while each waits in its ring, which valgrind 3.19 cannot run
# side by side (it holds its global lock through io_uring_enter).
VALGRIND_FLAGS ?= --error-exitcode=99 --leak-check=full \
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
  --track-origins=yes --num-callers=30 -q
VALGRIND_TIMEOUT ?= 1800
VALGRIND_SKIP := $(TEST_DIR)/test_loop_quiet

valgrind:
	@$(MAKE) --no-print-directory deps DEPS_VALGRIND=1
	@$(MAKE) --no-print-directory vgcheck SAN_TREE=valgrind \
	  SANFLAGS=-DMUXRING_MEMCHECK TEST_TIMEOUT=$(VALGRIND_TIMEOUT)

vgcheck: RUN_TESTS := $(filter-out $(VALGRIND_SKIP),$(RUN_TESTS))
vgcheck: $(SAN_TOOL_BINS) $(SAN_EXAMPLE_BINS) $(filter-out $(VALGRIND_SKIP),$(RUN_TESTS))
	$(call run_tests,env MUXRING_VALGRIND=1 valgrind $(VALGRIND_FLAGS))

bench:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory $(BUILD)/muxbench
	$(BUILD)/muxbench $(BENCH_ARGS)

# --- fuzzing -------------------------------------------------------------
#
# tests/fuzz/NAME.c holds LLVMFuzzerTestOneInput; the body it calls lives in
# tests/support/fuzz_*.c, shared with tests/test_fuzz_corpus.c (which replays
# a fixed corpus in `make test`). The library and the bodies are compiled
# with coverage (fuzzer-no-link), each target is linked with libFuzzer.
# Inputs that grow coverage stay in build/fuzz/corpus/NAME between runs;
# seeds come from tests/vectors; a crash, leak or timeout is written to
# build/fuzz/artifacts/ and fails the run.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_ARGS    ?=
FUZZ         := $(BUILD)/fuzz
FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer
FUZZ_CFLAGS  := $(CFLAGS) $(FUZZ_SANFLAGS) -O1 -g
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ)/%)
FUZZ_BODY_SRCS := $(sort $(wildcard tests/support/fuzz_*.c))
FUZZ_LIB_OBJS  := $(LIB_SRCS:%.c=$(FUZZ)/obj/%.o)
FUZZ_BODY_OBJS := $(FUZZ_BODY_SRCS:%.c=$(FUZZ)/obj/%.o)
FUZZ_LIB_A   := $(FUZZ)/libmuxring.a

FUZZ_FLAGS_LINE = $(FUZZ_CC) $(CPPFLAGS_ALL) $(FUZZ_CFLAGS) \
                  lib: $(FUZZ_LIB_FLAGS) bodies: $(FUZZ_BODY_FLAGS)
$(FUZZ)/.flags: FORCE
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || \
	  { echo "fuzz: needs $(FUZZ_CC) with libFuzzer (FUZZ_CC=...)" >&2; exit 1; }
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(FUZZ_FLAGS_LINE))' \
	  | cmp -s - $@ || printf '%s\n' '$(subst ','\'',$(FUZZ_FLAGS_LINE))' > $@

# The bodies keep edge coverage but not comparison tracing: their compares
# mirror the engine's (which keeps it), and tracing them cost a sixth of
# every execution.
FUZZ_BODY_FLAGS := -fno-sanitize-coverage=trace-cmp
$(FUZZ_BODY_OBJS): FUZZ_COV_FLAGS := $(FUZZ_BODY_FLAGS)
# The library keeps comparison tracing, which leads the fuzzer to the
# values the parser compares against, but not UBSan's alignment check:
# clang 14 traces that check's compare too, a call per member access and a
# quarter of every execution. No input can misalign an access: the codec
# and the engine read wire bytes as bytes, and every structure starts an
# allocation or sits in another structure. `make test` keeps the check
# (gcc's UBSan) over the same bodies, corpus and mutations.
FUZZ_LIB_FLAGS := -fno-sanitize=alignment
$(FUZZ_LIB_OBJS): FUZZ_COV_FLAGS := $(FUZZ_LIB_FLAGS)

$(FUZZ)/obj/%.o: %.c $(FUZZ)/.flags
	@mkdir -p $(@D)
	$(call say,CC,$@)$(FUZZ_CC) $(CPPFLAGS_ALL) -Itests/support $(FUZZ_CFLAGS) \
	  -fsanitize=fuzzer-no-link $(FUZZ_COV_FLAGS) $(DEPFLAGS) -c -o $@ $<

$(FUZZ_LIB_A): $(FUZZ_LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_BINS): $(FUZZ)/%: tests/fuzz/%.c tests/fuzz/asan_options.c \
	       $(FUZZ_BODY_OBJS) $(FUZZ_LIB_A) $(FUZZ)/.flags
	$(call say,LD,$@)$(FUZZ_CC) $(CPPFLAGS_ALL) -Itests/support $(FUZZ_CFLAGS) \
	  -fsanitize=fuzzer -o $@ $< tests/fuzz/asan_options.c \
	  $(FUZZ_BODY_OBJS) $(FUZZ_LIB_A) \
	  $(URING_LIBS) -lpthread $(LDLIBS)

# Seeds: every vector side's bytes; for the engine also behind a few
# configuration and raw-mode bytes (octal; see tests/support/fuzz_body.h);
# and every tests/fuzz/seeds/NAME/*.hex (hex, '#' lines are comments: the
# hand-written inputs and the reproducers that test_fuzz_corpus replays).
FUZZ_SEED_HEX := $(wildcard tests/fuzz/seeds/*/*.hex)
$(FUZZ)/seeds/.stamp: $(wildcard tests/vectors/*.hex) $(FUZZ_SEED_HEX)
	@mkdir -p $(FUZZ_BINS:$(FUZZ)/%=$(FUZZ)/seeds/%)
	@for f in $(FUZZ_SEED_HEX); do \
	  d=$${f%/*}; d=$${d##*/}; n=$${f##*/}; mkdir -p $(FUZZ)/seeds/$$d; \
	  perl -ne 'next if /^#/; chomp; print pack("H*", $$_)' $$f \
	    > $(FUZZ)/seeds/$$d/$${n%.hex}; \
	done
	@for f in tests/vectors/*.hex; do \
	  n=$${f##*/}; n=$${n%.hex}; \
	  perl -ne 'chomp; print pack("H*", $$_)' $$f > $(FUZZ)/seeds/fuzz_frame/$$n; \
	  for p in '001 200' '000 201' '003 202' '042 206' '123 302' '213 203'; do \
	    set -- $$p; \
	    { printf "\\$$1\\$$2"; cat $(FUZZ)/seeds/fuzz_frame/$$n; } \
	      > $(FUZZ)/seeds/fuzz_engine/$$n.$$1.$$2; \
	  done; \
	done
	@touch $@

# libFuzzer 14's Entropic scheduler looks every hit of a feature seen at
# most this many times up in a list of all such features (a linear search):
# at its default of 255 that took 40% of fuzz_link's time and 17% of
# fuzz_engine's; at 32, 6% and 2%, with the same coverage after a fixed
# number of runs from the seeds (README "Fuzzing").
FUZZ_LIBFUZZER_ARGS ?= -entropic_feature_frequency_threshold=32

# Longest input per target: 4 KiB, but the codec body checks every 8-byte
# window of its input, and frames are cut the same way in 512 bytes as in
# 4 KiB at an eighth of the cost per execution.
FUZZ_MAX_LEN ?= 4096
FUZZ_MAX_LEN_fuzz_frame ?= 512
fuzz_max_len = $(or $(FUZZ_MAX_LEN_$(notdir $(1))),$(FUZZ_MAX_LEN))

fuzz: $(FUZZ_BINS) $(FUZZ)/seeds/.stamp
	@fail=0; for tm in $(foreach b,$(FUZZ_BINS),$(b):$(call fuzz_max_len,$(b))); do \
	  t=$${tm%:*}; max_len=$${tm##*:}; name=$${t##*/}; \
	  mkdir -p $(FUZZ)/corpus/$$name $(FUZZ)/artifacts; \
	  echo "=== $$name: $(FUZZ_SECONDS)s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=3000 \
	      -max_len=$$max_len -print_final_stats=1 $(FUZZ_LIBFUZZER_ARGS) \
	      -artifact_prefix=$(abspath $(FUZZ))/artifacts/$$name- $(FUZZ_ARGS) \
	      $(FUZZ)/corpus/$$name $(FUZZ)/seeds/$$name \
	    || { fail=1; echo "*** $$name found a problem: see $(FUZZ)/artifacts/"; }; \
	done; exit $$fail

# Header checks rather than dpkg, so a non-Debian host with the headers
# passes; apt-get only runs when something is really missing.
deps:
	@missing=; \
	has_header() { [ -f /usr/include/$$1 ] || \
	  echo "#include <$$1>" | $(CC) -E -x c - >/dev/null 2>&1; }; \
	has_header liburing.h || missing="$$missing liburing-dev"; \
	has_header cmocka.h || missing="$$missing libcmocka-dev"; \
	has_header openssl/ssl.h || missing="$$missing libssl-dev"; \
	command -v $(PKG_CONFIG) >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	command -v groff >/dev/null 2>&1 || missing="$$missing groff-base"; \
	if [ -n '$(DEPS_VALGRIND)' ]; then \
	  command -v valgrind >/dev/null 2>&1 || missing="$$missing valgrind"; fi; \
	[ -n "$$missing" ] || exit 0; \
	echo "deps: missing:$$missing"; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else echo "deps: not root and no sudo; install$$missing by hand" >&2; exit 1; fi; \
	command -v apt-get >/dev/null 2>&1 || \
	  { echo "deps: no apt-get; install$$missing by hand" >&2; exit 1; }; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing

# --- install -------------------------------------------------------------

# Requires.private needs liburing.pc on the user's machine; without one,
# name the library directly instead.
PC_REQUIRES := $(if $(shell $(PKG_CONFIG) --exists liburing 2>/dev/null && echo y),liburing)
PC_LIBS     := $(if $(PC_REQUIRES),,-luring )-lpthread
PC_TLS_REQUIRES := $(if $(shell $(PKG_CONFIG) --exists openssl 2>/dev/null && echo y),libssl libcrypto)
PC_TLS_LIBS     := $(if $(PC_TLS_REQUIRES),,-lssl -lcrypto)

install: libs tools $(BENCH_BIN)
	install -d '$(DESTDIR)$(INCLUDEDIR)' '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(PKGCONFIGDIR)' \
	  '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(MANDIR)/man1'
	install -m 755 $(TOOL_BINS) $(BENCH_BIN) '$(DESTDIR)$(BINDIR)/'
	install -m 644 $(MAN_PAGES) '$(DESTDIR)$(MANDIR)/man1/'
	install -m 644 include/muxring.h include/muxring_engine.h include/muxring_tls.h \
	  '$(DESTDIR)$(INCLUDEDIR)/'
	install -m 644 $(LIB_A) $(TLS_A) '$(DESTDIR)$(LIBDIR)/'
	install -m 755 $(LIB_SO) $(TLS_SO) '$(DESTDIR)$(LIBDIR)/'
	ln -sf $(LIB_SO_REAL) '$(DESTDIR)$(LIBDIR)/$(LIB_SONAME)'
	ln -sf $(LIB_SONAME) '$(DESTDIR)$(LIBDIR)/libmuxring.so'
	ln -sf $(TLS_SO_REAL) '$(DESTDIR)$(LIBDIR)/$(TLS_SONAME)'
	ln -sf $(TLS_SONAME) '$(DESTDIR)$(LIBDIR)/libmuxring-tls.so'
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES_PRIVATE@|$(PC_TLS_REQUIRES)|g' -e 's|@LIBS_PRIVATE@|$(PC_TLS_LIBS)|g' \
	    muxring-tls.pc.in > '$(DESTDIR)$(PKGCONFIGDIR)/muxring-tls.pc'
	chmod 644 '$(DESTDIR)$(PKGCONFIGDIR)/muxring-tls.pc'
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES_PRIVATE@|$(PC_REQUIRES)|g' -e 's|@LIBS_PRIVATE@|$(PC_LIBS)|g' \
	    muxring.pc.in > '$(DESTDIR)$(PKGCONFIGDIR)/muxring.pc'
	chmod 644 '$(DESTDIR)$(PKGCONFIGDIR)/muxring.pc'

uninstall:
	rm -f '$(DESTDIR)$(INCLUDEDIR)/muxring.h' \
	      '$(DESTDIR)$(INCLUDEDIR)/muxring_engine.h' \
	      '$(DESTDIR)$(INCLUDEDIR)/muxring_tls.h' \
	      '$(DESTDIR)$(LIBDIR)/libmuxring-tls.a' \
	      '$(DESTDIR)$(LIBDIR)/$(TLS_SO_REAL)' \
	      '$(DESTDIR)$(LIBDIR)/$(TLS_SONAME)' \
	      '$(DESTDIR)$(LIBDIR)/libmuxring-tls.so' \
	      '$(DESTDIR)$(PKGCONFIGDIR)/muxring-tls.pc' \
	      '$(DESTDIR)$(LIBDIR)/libmuxring.a' \
	      '$(DESTDIR)$(LIBDIR)/$(LIB_SO_REAL)' \
	      '$(DESTDIR)$(LIBDIR)/$(LIB_SONAME)' \
	      '$(DESTDIR)$(LIBDIR)/libmuxring.so' \
	      '$(DESTDIR)$(PKGCONFIGDIR)/muxring.pc' \
	      $(foreach p,$(TOOL_BINS:$(BUILD)/%=%) $(notdir $(BENCH_BIN)),'$(DESTDIR)$(BINDIR)/$(p)') \
	      $(foreach p,$(notdir $(MAN_PAGES)),'$(DESTDIR)$(MANDIR)/man1/$(p)')

clean:
	rm -rf $(BUILD)

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

-include $(wildcard $(OBJ)/*/*.d $(OBJ)/src/*/*.d $(SOBJ)/*/*.d $(SOBJ)/src/*/*.d \
  $(SOBJ)/tests/support/*.d $(OBJ)/tools/common/*.d $(SOBJ)/tools/common/*.d)
-include $(wildcard $(FUZZ)/obj/*/*.d $(FUZZ)/obj/src/*/*.d $(FUZZ)/obj/tests/support/*.d)
