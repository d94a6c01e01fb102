/*
 * fuzz_decode.c — libFuzzer target for the image decoder: arbitrary bytes through
 * imgsim_image_load_buffer (format sniffing, header limits, colour conversion, recipe) with a
 * 4 Mpx / 16 MiB limit so giant headers are refused instead of exhausting memory.
 *
 * Build (from the repository root):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       $(pkg-config --cflags vips) src/core/error.c $(find src/image -name '*.c') fuzz/fuzz_decode.c \
 *       $(pkg-config --libs vips) -lpthread -lm -o build/fuzz/fuzz_decode
 * Run:
 *   build/fuzz/fuzz_decode -max_len=262144 -rss_limit_mb=4096 -max_total_time=60 CORPUS_DIR
 * Only imgsim's own code is instrumented; libvips and the codecs run uninstrumented.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (image_vips_init(NULL) != IMGSIM_OK)
            abort();
        ready = 1;
    }
    imgsim_prep p;
    imgsim_prep_default(&p);
    p.max_pixels = 4u << 20;
    p.max_file_bytes = 16u << 20;
    /* Alternate recipes by a cheap hash of the input so every path gets exercised. */
    switch (size % 3) {
    case 0: break;
    case 1: p.mode = IMGSIM_RESIZE_SQUASH, p.size = 64; break;
    case 2: p.mode = IMGSIM_RESIZE_NONE; break;
    }
    imgsim_image im;
    imgsim_error err;
    if (imgsim_image_load_buffer(data, size, &p, &im, &err) == IMGSIM_OK) {
        /* touch the pixels so a short buffer would show up under ASan */
        volatile uint8_t sink = 0;
        size_t n = (size_t)im.width * (size_t)im.height * 3;
        for (size_t i = 0; i < n; i += 4096)
            sink ^= im.rgb[i];
        sink ^= im.rgb[n - 1];
        (void)sink;
        imgsim_image_free(&im);
    }
    return 0;
}
