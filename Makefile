# Makefile — builds libimgsim, the imgsim CLI, tests, benchmarks and fuzzers.
#
#   make run      install what running needs, build, install the default model, run the main job
#   make test     install what the tests need, build release + ASan/UBSan, run every test under ASan
#   make check T=index/test_hnsw   build and run one test (C test or tests/**/*.sh; T=a,b for more)
#   make quality  slow quality report (Wang-1k leave-one-out P@10 for every model, three collections)
#   make bench    speed benchmarks against named peers (see bench/); bench-search: collections only;
#                 bench-onnx: ONNX models against ONNX Runtime; bench-ann: HNSW against hnswlib
#   make fuzz     libFuzzer targets (clang) under build/fuzz/
#   make release / asan    just build (no package installation); V=1 shows every command
#
# The entry points that install packages (run, test, quality, bench*, fuzz) first run
# scripts/deps.sh for their tier, then build in a second make process, so the pkg-config flags
# are computed after the -dev packages are there. Two build variants live side by side:
# build/release (-O2; the library and the binary) and build/asan (ASan + UBSan; also the tests).

SHARED ?= $(abspath ../shared)
export IMGSIM_SHARED := $(SHARED)

Q := $(if $(V),,@)
SUBMAKE = $(Q)$(MAKE) --no-print-directory

PKGS    := vips libcurl jansson sqlite3 openblas lapacke libmicrohttpd
CC      ?= cc
WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -D_GNU_SOURCE

# pkg-config, run once on first use (lazily: a target that installs the packages runs before it)
pkgconf = $(or $(shell pkg-config $(1) $(PKGS) 2>/dev/null),$(error pkg-config cannot find \
    $(PKGS): the -dev packages are missing; run 'scripts/deps.sh run' (or make run / make test)))
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkgconf,--cflags))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(call pkgconf,--libs))$(PKG_LIBS)
INC      = -Iinclude -Isrc $(PKG_CFLAGS)
LIBS     = $(PKG_LIBS) -lXNNPACK -lpthreadpool -lm -lpthread
TESTLIBS:= -lcmocka

REL_FLAGS  := -O2 -g -DNDEBUG
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort) build/gen/web_assets.c
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)
TEST_HELP:= $(shell find tests -name '*.c' ! -name 'test_*.c' | sort)
BENCH_SRC:= $(shell find bench -name '*.c' | sort)

.PHONY: all deps run test test-only check quality bench bench-search bench-onnx bench-ann fuzz \
        clean release asan
.SECONDARY:

all: release

deps:
	$(Q)scripts/deps.sh all

# One build variant: objects (with their header dependencies, -MMD -MP), the library, the
# binary, the test and bench programs. $(1) = name, $(2) = flags.
define variant
build/$(1)/obj/%.o: %.c Makefile
	@mkdir -p $$(dir $$@)
	@$$(if $$(V),,echo "CC $(1) $$<")
	$$(Q)$$(CC) $$(WARN) $(2) $$(INC) -MMD -MP -c $$< -o $$@

build/$(1)/libimgsim.a: $$(patsubst %.c,build/$(1)/obj/%.o,$$(LIB_SRC))
	@rm -f $$@
	$$(Q)ar rcs $$@ $$^

build/$(1)/imgsim: $$(patsubst %.c,build/$(1)/obj/%.o,$$(CLI_SRC)) build/$(1)/libimgsim.a
	@$$(if $$(V),,echo "LD $(1) $$@")
	$$(Q)$$(CC) $(2) -o $$@ $$^ $$(LIBS)

build/$(1)/tests/%: build/$(1)/obj/tests/%.o $$(patsubst %.c,build/$(1)/obj/%.o,$$(TEST_HELP)) build/$(1)/libimgsim.a
	@mkdir -p $$(dir $$@)
	@$$(if $$(V),,echo "LD $(1) $$@")
	$$(Q)$$(CC) $(2) -o $$@ $$^ $$(LIBS) $$(TESTLIBS)

build/$(1)/bench/%: build/$(1)/obj/bench/%.o build/$(1)/libimgsim.a
	@mkdir -p $$(dir $$@)
	@$$(if $$(V),,echo "LD $(1) $$@")
	$$(Q)$$(CC) $(2) -o $$@ $$^ $$(LIBS)

-include $$(shell find build/$(1)/obj -name '*.d' 2>/dev/null)
endef

# The web page (web/) embedded in the binary for `imgsim serve`: regenerated when a file in
# web/ changes, is added or removed (the folder's mtime), or the script does.
WEB_FILES := $(shell find web -type f ! -name '.*' 2>/dev/null | sort)
build/gen/web_assets.c: scripts/embed_web.py $(WEB_FILES) $(wildcard web)
	@mkdir -p build/gen
	@$(if $(V),,echo "GEN $@")
	$(Q)/usr/bin/python3 scripts/embed_web.py web $@

$(eval $(call variant,release,$(REL_FLAGS)))
$(eval $(call variant,asan,$(ASAN_FLAGS)))

ASAN_TESTS := $(patsubst tests/%.c,build/asan/tests/%,$(TEST_SRC))
BENCH_BINS := $(patsubst bench/%.c,build/release/bench/%,$(BENCH_SRC))

release: build/release/imgsim
asan: build/asan/imgsim $(ASAN_TESTS)

run:
	$(Q)scripts/deps.sh run
	$(SUBMAKE) release
	$(Q)scripts/run_main.sh

# The test command of the README: deps, both builds, every test under ASan+UBSan.
test:
	$(Q)scripts/deps.sh test
	$(SUBMAKE) release asan
	$(Q)scripts/run_tests.sh build/asan

test-only: release asan
	$(Q)scripts/run_tests.sh build/asan

# One test (or a comma-separated few), by its path under tests/ without .c:
#   make check T=index/test_hnsw     make check T=cli/test_ann.sh,core/test_strmap
comma := ,
check_names := $(subst $(comma), ,$(T))
check: build/asan/imgsim $(foreach t,$(check_names),$(if $(filter %.sh,$(t)),,build/asan/tests/$(t)))
	$(if $(T),,$(error name a test: make check T=index/test_hnsw))
	$(Q)scripts/run_tests.sh build/asan $(check_names)

quality:
	$(Q)scripts/deps.sh run
	$(SUBMAKE) release
	$(Q)scripts/quality.sh
	$(Q)scripts/quality_collections.sh

bench:
	$(Q)scripts/deps.sh bench
	$(SUBMAKE) release $(BENCH_BINS)
	$(Q)scripts/bench.sh
	$(Q)scripts/bench_search.sh
	$(Q)bench/http.sh

bench-search:
	$(Q)scripts/deps.sh bench
	$(SUBMAKE) release build/release/bench/search
	$(Q)scripts/bench_search.sh

# imgsim's HNSW against hnswlib on the Myntra vectors (ANN_DERIVED=1: also 1M x 256); docs/ANN.md
bench-ann:
	$(Q)scripts/deps.sh bench
	$(SUBMAKE) release build/release/bench/ann
	$(Q)bench/ann.sh

# ONNX models (random-weight ResNet-50/VGG16/MobileNetV2/EfficientNet-B0 + the int8 zoo
# MobileNetV2) against ONNX Runtime, same run (docs/ONNX.md).
bench-onnx:
	$(Q)scripts/deps.sh bench
	$(SUBMAKE) release build/release/bench/embed
	$(Q)bench/onnx.sh

fuzz:
	$(Q)scripts/deps.sh fuzz
	$(SUBMAKE) release build/release/bench/ann
	$(Q)IMGSIM_PKGS="$(PKGS)" scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
