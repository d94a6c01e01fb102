# Makefile — builds libimgsim, the imgsim CLI, tests, benchmarks and fuzzers.
#
#   make run      install Debian deps, build, install the default model, run the main job
#   make test     install Debian deps, build release + ASan/UBSan, run every test under ASan
#   make quality  slow quality report (Wang-1k leave-one-out P@10 for every model)
#   make bench    speed benchmarks against named peers (see bench/); bench-search: collections only;
#                 bench-onnx: ONNX models against ONNX Runtime
#   make fuzz     libFuzzer targets (clang) under build/fuzz/
#
# Two build variants live side by side: build/release (-O2) and build/asan (ASan + UBSan).

SHARED ?= $(abspath ../shared)
export IMGSIM_SHARED := $(SHARED)

PKGS    := vips libcurl jansson sqlite3 openblas lapacke libmicrohttpd
CC      ?= cc
WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -D_GNU_SOURCE
INC     := -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lXNNPACK -lpthreadpool -lm -lpthread
TESTLIBS:= -lcmocka

REL_FLAGS  := -O2 -g -DNDEBUG
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort) build/gen/web_assets.c
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)
TEST_HELP:= $(shell find tests -name '*.c' ! -name 'test_*.c' | sort)
BENCH_SRC:= $(shell find bench -name '*.c' | sort)
HDRS     := $(shell find include src tests -name '*.h')

.PHONY: all deps run test test-only quality bench bench-search bench-onnx fuzz clean release asan

all: release

deps:
	@scripts/deps.sh

define variant
build/$(1)/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $$(dir $$@)
	@echo "CC $(1) $$<"
	@$$(CC) $$(WARN) $(2) $$(INC) -c $$< -o $$@

build/$(1)/libimgsim.a: $$(patsubst %.c,build/$(1)/obj/%.o,$$(LIB_SRC))
	@rm -f $$@
	@ar rcs $$@ $$^

build/$(1)/imgsim: $$(patsubst %.c,build/$(1)/obj/%.o,$$(CLI_SRC)) build/$(1)/libimgsim.a
	@echo "LD $(1) $$@"
	@$$(CC) $(2) -o $$@ $$^ $$(LIBS)

build/$(1)/tests/%: build/$(1)/obj/tests/%.o $$(patsubst %.c,build/$(1)/obj/%.o,$$(TEST_HELP)) build/$(1)/libimgsim.a
	@mkdir -p $$(dir $$@)
	@echo "LD $(1) $$@"
	@$$(CC) $(2) -o $$@ $$^ $$(LIBS) $$(TESTLIBS)

build/$(1)/bench/%: build/$(1)/obj/bench/%.o build/$(1)/libimgsim.a
	@mkdir -p $$(dir $$@)
	@echo "LD $(1) $$@"
	@$$(CC) $(2) -o $$@ $$^ $$(LIBS)

$(1): build/$(1)/imgsim $$(patsubst tests/%.c,build/$(1)/tests/%,$$(TEST_SRC))
endef

# The web page (web/) embedded in the binary for `imgsim serve`: regenerated when a file in
# web/ changes, is added or removed (the folder's mtime), or the script does.
WEB_FILES := $(shell find web -type f ! -name '.*' 2>/dev/null | sort)
build/gen/web_assets.c: scripts/embed_web.py $(WEB_FILES) $(wildcard web)
	@mkdir -p build/gen
	@echo "GEN $@"
	@/usr/bin/python3 scripts/embed_web.py web $@

$(eval $(call variant,release,$(REL_FLAGS)))
$(eval $(call variant,asan,$(ASAN_FLAGS)))

run: deps release
	@scripts/run_main.sh

# The test command of the README: deps, both builds, every test under ASan+UBSan.
test: deps
	$(MAKE) release asan
	@scripts/run_tests.sh build/asan

test-only: release asan
	@scripts/run_tests.sh build/asan

quality: deps release
	@scripts/quality.sh
	@scripts/quality_collections.sh

bench: deps release $(patsubst bench/%.c,build/release/bench/%,$(BENCH_SRC))
	@scripts/bench.sh
	@scripts/bench_search.sh
	@bench/http.sh

bench-search: deps release build/release/bench/search
	@scripts/bench_search.sh

# imgsim's HNSW against hnswlib on the Myntra vectors (ANN_DERIVED=1: also 1M x 256); docs/ANN.md
.PHONY: bench-ann
bench-ann: deps release build/release/bench/ann
	@bench/ann.sh

# ONNX models (random-weight ResNet-50/VGG16/MobileNetV2/EfficientNet-B0 + the int8 zoo
# MobileNetV2) against ONNX Runtime, same run (docs/ONNX.md).
bench-onnx: deps release build/release/bench/embed
	@bench/onnx.sh

fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
