/*
 * cmd_embed.c — `imgsim embed`: images to vectors, as a numpy .npy (plus a .paths file
 * giving each row's image) or JSON lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "core/grow.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imgsim embed [options] IMAGE... -o OUT.npy\n"
            "  -o, --output FILE     output file (npy: also writes FILE.paths); jsonl: default stdout\n"
            "  --format npy|jsonl    output format (default: npy, or jsonl without -o)\n"
            "  --model NAME|PATH     model (default $IMGSIM_MODEL or mobilenet_edgetpu)\n"
            "  --layer NAME          embedding tensor (default: the global pool)\n"
            "  --precision auto|quant|fp32   quantized models: run uint8 or dequantized fp32\n"
            "  --no-normalize        keep raw activations (default: L2-normalised)\n"
            "  --resize shorter|squash  shorter side + centre crop (model default), or squash\n"
            "  --raw WxH             inputs are raw RGB bytes of this size\n"
            "  --list FILE           read image paths from FILE (one per line, - for stdin)\n"
            "  --threads N           inference threads (default: all cores)\n"
            "  --quiet               no summary line\n");
}

typedef struct sink {
    FILE *jsonl;
    float *rows;
    size_t nrows, cap;
    int dim;
    char **ok_paths;
    size_t failed;
} sink;

static int on_result(void *user, const imgsim_result *r)
{
    sink *s = user;
    if (r->status != IMGSIM_OK) {
        fprintf(stderr, "imgsim embed: %s: %s\n", r->source, r->error);
        s->failed++;
        return 0;
    }
    if (s->jsonl) {
        json_t *o = cli_json_path_object("embed", r->source);
        if (!o) {
            s->failed++; /* reported */
            return 0;
        }
        json_t *v = json_array();
        int bad = json_object_set_new(o, "vector", v) < 0;
        for (int i = 0; !bad && i < s->dim; i++)
            bad = json_array_append_new(v, json_real((double)r->vec[i])) < 0;
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        if (cli_json_print("embed", s->jsonl, o,
                           JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7)) < 0)
            return 1;
        s->nrows++;
        return 0;
    }
    size_t rcap = s->cap, pcap = s->cap;
    if (grow_array((void **)&s->rows, &rcap, s->nrows + 1, (size_t)s->dim * sizeof(float), 256) ||
        grow_array((void **)&s->ok_paths, &pcap, s->nrows + 1, sizeof(char *), 256)) {
        fprintf(stderr, "imgsim embed: out of memory\n");
        return 1;
    }
    s->cap = pcap;
    memcpy(s->rows + s->nrows * (size_t)s->dim, r->vec, (size_t)s->dim * sizeof(float));
    s->ok_paths[s->nrows++] = (char *)r->source;
    return 0;
}

int cmd_embed(int argc, char **argv)
{
    cli_model_args a = {0};
    const char *out = NULL, *format = NULL;
    int quiet = 0, npos = 0;
    char **pos = calloc((size_t)argc, sizeof(char *));
    if (!pos)
        return 1;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option("embed", argc, argv, &i, &a);
        if (r < 0)
            goto usage_err;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            free(pos);
            return 0;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (!(out = cli_value("embed", argc, argv, &i)))
                goto usage_err;
        } else if (!strcmp(argv[i], "--format")) {
            if (!(format = cli_value("embed", argc, argv, &i)))
                goto usage_err;
            if (strcmp(format, "npy") && strcmp(format, "jsonl")) {
                fprintf(stderr, "imgsim embed: --format must be npy or jsonl\n");
                goto usage_err;
            }
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "imgsim embed: unknown option %s\n", argv[i]);
            goto usage_err;
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (!format)
        format = out ? "npy" : "jsonl";
    if (!strcmp(format, "npy") && !out) {
        fprintf(stderr, "imgsim embed: npy output needs -o FILE\n");
        goto usage_err;
    }
    size_t n;
    char **paths = cli_collect_paths("embed", pos, npos, a.list, &n);
    free(pos);
    if (!paths)
        return 2;
    imgsim_model *m = cli_open_model("embed", &a);
    imgsim_ctx *c = NULL;
    imgsim_error e = {0};
    int rc = 1;
    sink s = {0};
    if (!m)
        goto done;
    if (imgsim_ctx_new(m, &c, &e) != IMGSIM_OK) {
        cli_error("embed", &e);
        goto done;
    }
    s.dim = imgsim_model_dim(m);
    if (!strcmp(format, "jsonl")) {
        s.jsonl = out ? fopen(out, "w") : stdout;
        if (!s.jsonl) {
            fprintf(stderr, "imgsim embed: cannot write %s\n", out);
            goto done;
        }
    }
    imgsim_batch_opts bo = {0};
    imgsim_prep prep;
    cli_prep(&a, m, &prep);
    bo.prep = &prep;
    bo.raw_width = a.raw_w;
    bo.raw_height = a.raw_h;
    double t0 = clock_now();
    imgsim_status st = imgsim_embed_files(c, (const char *const *)paths, n, &bo, on_result, &s, &e);
    double t1 = clock_now();
    if (st != IMGSIM_OK) {
        cli_error("embed", &e);
        goto done;
    }
    if (s.jsonl) {
        if ((s.jsonl != stdout && fclose(s.jsonl) != 0) || (s.jsonl == stdout && fflush(stdout))) {
            s.jsonl = NULL;
            fprintf(stderr, "imgsim embed: write error\n");
            goto done;
        }
        s.jsonl = NULL;
    } else {
        if (imgsim_write_npy(out, s.rows, s.nrows, (size_t)s.dim, &e) != IMGSIM_OK) {
            cli_error("embed", &e);
            goto done;
        }
        size_t pl = strlen(out) + 7;
        char *pp = malloc(pl);
        FILE *pf = pp ? (snprintf(pp, pl, "%s.paths", out), fopen(pp, "w")) : NULL;
        if (!pf) {
            fprintf(stderr, "imgsim embed: cannot write %s.paths\n", out);
            free(pp);
            goto done;
        }
        for (size_t i = 0; i < s.nrows; i++)
            fprintf(pf, "%s\n", s.ok_paths[i]);
        int bad = fclose(pf) != 0;
        free(pp);
        if (bad) {
            fprintf(stderr, "imgsim embed: write error on %s.paths\n", out);
            goto done;
        }
    }
    double secs = t1 - t0;
    if (!quiet)
        fprintf(stderr, "imgsim embed: %zu images embedded (%d-d, %s) in %.2f s, %.1f images/s; %zu failed\n",
                s.nrows, s.dim, imgsim_model_name(m), secs, secs > 0 ? (double)s.nrows / secs : 0.0,
                s.failed);
    rc = s.failed ? 1 : 0;
done:
    if (s.jsonl && s.jsonl != stdout)
        fclose(s.jsonl);
    free(s.rows);
    free(s.ok_paths);
    imgsim_ctx_free(c);
    imgsim_model_close(m);
    cli_free_paths(paths, n);
    return rc;
usage_err:
    free(pos);
    usage(stderr);
    return 2;
}
