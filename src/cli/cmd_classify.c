/*
 * cmd_classify.c — `imgsim classify`: top-k ImageNet classes with scores for each image.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imgsim classify [options] IMAGE...\n"
            "  --top K               classes to show (default 5)\n"
            "  --json                one JSON object per image\n"
            "  --model NAME|PATH     a classifier model (default $IMGSIM_MODEL or mobilenet_edgetpu)\n"
            "  --precision auto|quant|fp32\n"
            "  --resize shorter|squash  shorter side + centre crop (model default), or squash\n"
            "  --raw WxH             inputs are raw RGB bytes of this size\n"
            "  --list FILE           read image paths from FILE\n"
            "  --threads N           inference threads\n");
}

typedef struct cls_state {
    const imgsim_model *m;
    int top, json, ncls;
    size_t failed;
} cls_state;

/* The class's label, or "class N" in buf when the model has none. */
static const char *class_label(const cls_state *s, int c, char *buf, size_t n)
{
    const char *name = imgsim_model_class_name(s->m, c);
    if (name)
        return name;
    snprintf(buf, n, "class %d", c);
    return buf;
}

/* {"path": ..., "classes": [{"class", "label", "score"}, ...]} on one line. */
static int print_json(const cls_state *s, const imgsim_result *r, const int *best, int top)
{
    json_t *o = cli_json_path_object("classify", r->source);
    if (!o)
        return -1;
    json_t *arr = json_array();
    int bad = json_object_set_new(o, "classes", arr) < 0;
    for (int t = 0; !bad && t < top; t++) {
        char buf[32];
        const char *name = class_label(s, best[t], buf, sizeof buf);
        json_t *c = json_object();
        bad = json_array_append_new(arr, c) < 0 ||
              json_object_set_new(c, "class", json_integer(best[t])) < 0 ||
              json_object_set_new(c, "label", json_string(name)) < 0 ||
              json_object_set_new(c, "score", json_real((double)r->probs[best[t]])) < 0;
    }
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return cli_json_print("classify", stdout, o,
                          JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(5));
}

static int on_result(void *user, const imgsim_result *r)
{
    cls_state *s = user;
    if (r->status != IMGSIM_OK) {
        fprintf(stderr, "imgsim classify: %s: %s\n", r->source, r->error);
        s->failed++;
        return 0;
    }
    int top = s->top < s->ncls ? s->top : s->ncls;
    int best[64];
    for (int t = 0; t < top; t++) { /* partial selection of the k best */
        int b = -1;
        for (int i = 0; i < s->ncls; i++) {
            int used = 0;
            for (int u = 0; u < t; u++)
                used |= best[u] == i;
            if (!used && (b < 0 || r->probs[i] > r->probs[b]))
                b = i;
        }
        best[t] = b;
    }
    if (s->json) {
        if (print_json(s, r, best, top) < 0)
            s->failed++;
        return 0;
    }
    printf("%s\n", r->source);
    for (int t = 0; t < top; t++) {
        char buf[32];
        const char *name = class_label(s, best[t], buf, sizeof buf);
        printf("  %.3f  %s\n", (double)r->probs[best[t]], name);
    }
    return 0;
}

int cmd_classify(int argc, char **argv)
{
    cli_model_args a = {0};
    cls_state s = {0};
    s.top = 5;
    int npos = 0;
    char **pos = calloc((size_t)argc, sizeof(char *));
    if (!pos)
        return 1;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option("classify", argc, argv, &i, &a);
        if (r < 0)
            goto usage_err;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            free(pos);
            return 0;
        } else if (!strcmp(argv[i], "--top") || !strcmp(argv[i], "-k")) {
            const char *v = cli_value("classify", argc, argv, &i);
            char *end;
            long k = v ? strtol(v, &end, 10) : 0;
            if (!v || *end || k < 1 || k > 64) {
                fprintf(stderr, "imgsim classify: --top needs a number from 1 to 64\n");
                goto usage_err;
            }
            s.top = (int)k;
        } else if (!strcmp(argv[i], "--json")) {
            s.json = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "imgsim classify: unknown option %s\n", argv[i]);
            goto usage_err;
        } else {
            pos[npos++] = argv[i];
        }
    }
    size_t n;
    char **paths = cli_collect_paths("classify", pos, npos, a.list, &n);
    free(pos);
    if (!paths)
        return 2;
    int rc = 1;
    imgsim_ctx *c = NULL;
    imgsim_error e = {0};
    imgsim_model *m = cli_open_model("classify", &a);
    if (!m)
        goto done;
    s.m = m;
    s.ncls = imgsim_model_num_classes(m);
    if (s.ncls == 0) {
        fprintf(stderr, "imgsim classify: model %s has no classifier output (it is an embedder)\n",
                imgsim_model_name(m));
        goto done;
    }
    if (imgsim_ctx_new(m, &c, &e) != IMGSIM_OK) {
        cli_error("classify", &e);
        goto done;
    }
    imgsim_batch_opts bo = {0};
    imgsim_prep prep;
    cli_prep(&a, m, &prep);
    bo.prep = &prep;
    bo.raw_width = a.raw_w;
    bo.raw_height = a.raw_h;
    bo.want_probs = 1;
    if (imgsim_embed_files(c, (const char *const *)paths, n, &bo, on_result, &s, &e) != IMGSIM_OK) {
        cli_error("classify", &e);
        goto done;
    }
    rc = s.failed ? 1 : 0;
done:
    fflush(stdout);
    imgsim_ctx_free(c);
    imgsim_model_close(m);
    cli_free_paths(paths, n);
    return rc;
usage_err:
    free(pos);
    usage(stderr);
    return 2;
}
