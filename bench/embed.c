/*
 * bench/embed.c — embedding speed: model-only inference (batch 1 and 16) and the whole
 * pipeline (decode + resize + inference, overlapped) with a time breakdown.
 * Prints one JSON line per measurement; scripts/bench.sh sets them against ONNX Runtime
 * measured in the same run.
 *
 *   build/release/bench/embed --model PATH --threads 2 --seconds 10 [--list IMAGES --set NAME]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "imgsim.h"

static void die(const char *what, const imgsim_error *e)
{
    fprintf(stderr, "bench/embed: %s: %s\n", what, e->msg);
    exit(1);
}

static int count_cb(void *user, const imgsim_result *r)
{
    if (r->status == IMGSIM_OK)
        ++*(size_t *)user;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *list = NULL, *set = "images", *prec = "auto";
    int threads = 2;
    double seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--list")) list = argv[i + 1];
        else if (!strcmp(argv[i], "--set")) set = argv[i + 1];
        else if (!strcmp(argv[i], "--precision")) prec = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
    }
    imgsim_error e = {0};
    if (imgsim_init(argv[0], &e) != IMGSIM_OK)
        die("init", &e);
    imgsim_model_opts o;
    imgsim_model_opts_default(&o);
    o.threads = threads;
    o.precision = !strcmp(prec, "fp32") ? IMGSIM_PRECISION_FP32
                  : !strcmp(prec, "quant") ? IMGSIM_PRECISION_QUANT : IMGSIM_PRECISION_AUTO;
    imgsim_model *m;
    if (imgsim_model_open(model, &o, &m, &e) != IMGSIM_OK)
        die("model", &e);
    imgsim_ctx *c;
    if (imgsim_ctx_new(m, &c, &e) != IMGSIM_OK)
        die("context", &e);
    int d = imgsim_model_dim(m);
    imgsim_prep p;
    imgsim_model_prep(m, &p);

    if (!list) { /* model only: 16 distinct inputs (deterministic noise images) */
        imgsim_image imgs[16];
        unsigned seed = 7;
        for (int i = 0; i < 16; i++) {
            imgs[i].width = imgs[i].height = p.size;
            imgs[i].rgb = malloc((size_t)p.size * (size_t)p.size * 3);
            for (int k = 0; k < p.size * p.size * 3; k++)
                imgs[i].rgb[k] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 24);
        }
        float *out = malloc(sizeof(float) * 16 * (size_t)d);
        int batches[] = {1, 16};
        for (int b = 0; b < 2; b++) {
            int bs = batches[b];
            for (int w = 0; w < 3; w++) /* warm-up */
                imgsim_embed(c, imgs, bs, out, NULL, &e);
            size_t n = 0;
            double t0 = clock_now(), t;
            do {
                if (imgsim_embed(c, imgs, bs, out, NULL, &e) != IMGSIM_OK)
                    die("embed", &e);
                n += (size_t)bs;
            } while ((t = clock_now() - t0) < seconds);
            printf("{\"impl\":\"imgsim\",\"mode\":\"model\",\"model\":\"%s\",\"precision\":\"%s\",\"threads\":%d,\"batch\":%d,"
                   "\"images_per_s\":%.1f,\"ms_per_image\":%.3f}\n",
                   imgsim_model_name(m), prec, threads, bs, (double)n / t, 1000.0 * t / (double)n);
            fflush(stdout);
        }
        for (int i = 0; i < 16; i++)
            free(imgs[i].rgb);
        free(out);
    } else { /* whole pipeline over a list, plus decode-only and inference-only passes */
        FILE *f = fopen(list, "r");
        if (!f) {
            fprintf(stderr, "bench/embed: cannot open %s\n", list);
            return 1;
        }
        size_t cap = 1024, n = 0;
        char **paths = malloc(cap * sizeof *paths), line[4096];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!*line)
                continue;
            if (n == cap)
                paths = realloc(paths, (cap *= 2) * sizeof *paths);
            paths[n++] = strdup(line);
        }
        fclose(f);
        /* decode + resize alone, one thread */
        double t0 = clock_now();
        size_t ndec = 0;
        imgsim_image keep[16];
        for (size_t i = 0; i < n; i++) {
            imgsim_image img;
            if (imgsim_image_load_file(paths[i], &p, &img, &e) == IMGSIM_OK) {
                if (ndec < 16)
                    keep[ndec] = img;
                else
                    imgsim_image_free(&img);
                ndec++;
            }
        }
        double t_dec = clock_now() - t0;
        /* inference alone at batch 16 on the same number of images */
        float *out = malloc(sizeof(float) * 16 * (size_t)d);
        int kb = ndec < 16 ? (int)ndec : 16;
        t0 = clock_now();
        for (size_t done = 0; done < ndec; done += (size_t)kb)
            imgsim_embed(c, keep, kb, out, NULL, &e);
        double t_inf = clock_now() - t0;
        /* the pipeline: decode threads overlapped with inference */
        size_t ok = 0;
        t0 = clock_now();
        if (imgsim_embed_files(c, (const char *const *)paths, n, NULL, count_cb, &ok, &e) != IMGSIM_OK)
            die("pipeline", &e);
        double t_all = clock_now() - t0;
        printf("{\"impl\":\"imgsim\",\"mode\":\"pipeline\",\"set\":\"%s\",\"model\":\"%s\",\"threads\":%d,\"images\":%zu,"
               "\"images_per_s\":%.1f,\"decode_resize_ms_per_image_1thread\":%.3f,"
               "\"infer_ms_per_image\":%.3f,\"pipeline_ms_per_image\":%.3f}\n",
               set, imgsim_model_name(m), threads, ok, (double)ok / t_all, 1000.0 * t_dec / (double)n,
               1000.0 * t_inf / (double)(ndec ? ndec : 1), 1000.0 * t_all / (double)(ok ? ok : 1));
        for (size_t i = 0; i < (ndec < 16 ? ndec : 16); i++)
            imgsim_image_free(&keep[i]);
        for (size_t i = 0; i < n; i++)
            free(paths[i]);
        free(paths);
        free(out);
    }
    imgsim_ctx_free(c);
    imgsim_model_close(m);
    return 0;
}
