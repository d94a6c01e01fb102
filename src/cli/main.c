/*
 * main.c — the imgsim command: a thin dispatcher over the library (include/imgsim.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"classify", cmd_classify, "top ImageNet classes of images"},
    {"embed", cmd_embed, "images to vectors (.npy or JSON lines)"},
    {"model", cmd_model, "list, install and inspect models"},
    {"prep", cmd_prep, "write the exact network input of an image"},
    {"index", cmd_index, "add folders or a CSV catalogue to a collection"},
    {"query", cmd_query, "the k items most like an image or an item"},
    {"neighbours", cmd_neighbours, "precompute the top-k table of every item"},
    {"export", cmd_export, "write the neighbour table (CSV/JSON) or the vectors (.npy)"},
    {"eval", cmd_eval, "leave-one-out precision/recall/mAP of a collection"},
    {"remove", cmd_remove, "remove items from a collection"},
    {"info", cmd_info, "what a collection holds"},
    {"ann", cmd_ann, "build, inspect or drop a collection's HNSW index"},
    {"serve", cmd_serve, "HTTP API and web page for visual search"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: imgsim COMMAND [options]   (imgsim COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    imgsim_error e = {0};
    if (imgsim_init(argv[0], &e) != IMGSIM_OK) {
        cli_error("init", &e);
        return 1;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "imgsim: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
