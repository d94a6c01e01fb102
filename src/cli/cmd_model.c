/*
 * cmd_model.c — `imgsim model list|install|info`: the model registry from the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imgsim model list\n"
            "       imgsim model install NAME... [--from DIR]   copy from DIR or download; SHA-256 checked\n"
            "       imgsim model info [NAME|PATH] [--precision auto|quant|fp32]\n"
            "models are installed in $IMGSIM_MODEL_DIR (default ~/.local/share/imgsim/models)\n");
}

static int list(void)
{
    int n;
    const imgsim_manifest *ms = imgsim_builtin_manifests(&n);
    char *dir = imgsim_model_dir();
    const char *def = imgsim_default_model();
    printf("models (installed in %s):\n", dir ? dir : "?");
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", dir ? dir : ".", ms[i].name);
        int inst = access(path, R_OK) == 0;
        printf("  %s %-28s %-10s %s\n", strcmp(def, ms[i].name) ? " " : "*", ms[i].name,
               inst ? "installed" : "-", ms[i].description);
    }
    printf("* = default (set IMGSIM_MODEL to change)\n");
    free(dir);
    return 0;
}

int cmd_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "list"))
        return list();
    if (!strcmp(sub, "install")) {
        const char *from = NULL;
        int nnames = 0, rc = 0;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--from")) {
                if (!(from = cli_value("model install", argc, argv, &i)))
                    return 2;
            } else if (argv[i][0] == '-') {
                fprintf(stderr, "imgsim model install: unknown option %s\n", argv[i]);
                return 2;
            } else {
                nnames++;
            }
        }
        if (nnames == 0) {
            usage(stderr);
            return 2;
        }
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--from")) {
                i++;
                continue;
            }
            imgsim_error e = {0};
            if (imgsim_model_install(argv[i], from, &e) != IMGSIM_OK) {
                cli_error("model install", &e);
                rc = 1;
            } else {
                printf("installed %s\n", argv[i]);
            }
        }
        return rc;
    }
    if (!strcmp(sub, "info")) {
        cli_model_args a = {0};
        for (int i = 2; i < argc; i++) {
            int r = cli_model_option("model info", argc, argv, &i, &a);
            if (r < 0)
                return 2;
            if (r == 0)
                a.model = argv[i];
        }
        imgsim_model *m = cli_open_model("model info", &a);
        if (!m)
            return 1;
        char *d = imgsim_model_describe(m);
        if (d)
            fputs(d, stdout);
        free(d);
        imgsim_model_close(m);
        return d ? 0 : 1;
    }
    fprintf(stderr, "imgsim model: unknown subcommand '%s'\n", sub);
    usage(stderr);
    return 2;
}
