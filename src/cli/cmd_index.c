/*
 * cmd_index.c — `imgsim index` (add folders or a CSV catalogue to a collection, with a
 * progress bar and a summary; --ann builds or maintains the HNSW index), `imgsim remove` and
 * `imgsim info`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "core/clock.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imgsim index [options] FOLDER...\n"
            "       imgsim index [options] --csv FILE (--path-column C | --path-format T) ...\n"
            "  --db DIR               collection (default $IMGSIM_DB or ./imgsim.db; created)\n"
            "  --model NAME|PATH      model for a new collection (default mobilenet_edgetpu)\n"
            "  --csv FILE             a catalogue: one image per row, other columns kept as metadata\n"
            "  --path-column C        column with the image path (relative to the CSV's folder)\n"
            "  --path-format T        or a template, e.g. 'images/{id}.jpg'\n"
            "  --id-column C          column with the item id (default: the path)\n"
            "  --label-column C       column with the label/category\n"
            "  --box-columns X,Y,W,H  columns of a region to embed instead of the whole image\n"
            "  --delimiter CHAR       CSV field separator (default ,)\n"
            "  --sync                 also drop items whose files have vanished\n"
            "  --quiet                no progress, only errors and the summary\n"
            "  --commit-every N       images per transaction (default 256)\n"
            "  --ann                  also build an HNSW index for approximate search (once\n"
            "                         built, every index/remove keeps it in step); options:\n"
            "%s"
            "exit status: 0 all done, 3 done but some rows/images were skipped, 1 error\n",
            CLI_ANN_OPTIONS_HELP);
}

static volatile int stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct ui {
    int tty, quiet;
    double t0, last_line;
    size_t bad_rows;
    int bar_shown;
} ui;

static void clear_bar(ui *u)
{
    if (u->bar_shown) {
        fputs("\r\033[K", stderr);
        u->bar_shown = 0;
    }
}

static void on_problem(void *user, const char *where, const char *msg)
{
    ui *u = user;
    clear_bar(u);
    u->bad_rows++;
    fprintf(stderr, "imgsim index: %s%s%s\n", where, *where ? ": " : "", msg);
}

static void on_item(void *user, imgsim_ingest_event ev, const imgsim_source *s, const char *msg)
{
    ui *u = user;
    if (ev != IMGSIM_INGEST_FAILED)
        return;
    clear_bar(u);
    /* msg usually starts with the path; add the CSV line when there is one */
    if (s->origin && strcmp(s->origin, s->path) != 0)
        fprintf(stderr, "imgsim index: %s: %s\n", s->origin, msg ? msg : "failed");
    else
        fprintf(stderr, "imgsim index: %s\n", msg ? msg : s->path);
}

static void on_progress(void *user, size_t done, size_t total)
{
    ui *u = user;
    if (u->quiet)
        return;
    double t = clock_now(), el = t - u->t0;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    if (u->tty) {
        int width = 30, fill = total ? (int)((double)width * (double)done / (double)total) : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r\033[K[%s] %zu/%zu  %.0f/s  ETA %d:%02d", bar, done, total, rate,
                (int)eta / 60, (int)eta % 60);
        u->bar_shown = 1;
    } else if (t - u->last_line >= 10 || done == total) {
        if (done == 0 && total != 0)
            return;
        u->last_line = t;
        fprintf(stderr, "imgsim index: %zu/%zu (%.0f/s, ETA %ds)\n", done, total, rate, (int)eta);
    }
}

static int add_sources(imgsim_sources *srcs, char **folders, int nf, imgsim_csv_opts *csv, ui *u)
{
    imgsim_error e = {0};
    for (int i = 0; i < nf; i++)
        if (imgsim_sources_from_dir(srcs, folders[i], on_problem, u, &e) != IMGSIM_OK) {
            cli_error("index", &e);
            return -1;
        }
    if (csv->path && imgsim_sources_from_csv(srcs, csv, on_problem, u, &e) != IMGSIM_OK) {
        cli_error("index", &e);
        return -1;
    }
    return 0;
}

int cmd_index(int argc, char **argv)
{
    cli_model_args a = {0};
    imgsim_model_opts_default(&a.opts);
    imgsim_csv_opts csv;
    imgsim_csv_opts_default(&csv);
    const char *dbdir = NULL;
    int sync = 0, quiet = 0, commit_every = 0, ann = 0;
    cli_ann_args aa;
    cli_ann_args_init(&aa);
    char *boxes = NULL;
    char **folders = calloc((size_t)argc + 1, sizeof *folders);
    int nf = 0;
    if (!folders)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int r = cli_model_option("index", argc, argv, &i, &a);
        if (r < 0)
            goto bad;
        if (r > 0)
            continue;
        if ((r = cli_ann_option("index", argc, argv, &i, &aa)) < 0)
            goto bad;
        if (r > 0)
            continue;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            free(folders);
            return 0;
        } else if (!strcmp(o, "--ann")) {
            ann = 1;
        } else if (!strcmp(o, "--sync")) {
            sync = 1;
        } else if (!strcmp(o, "--quiet") || !strcmp(o, "-q")) {
            quiet = 1;
        } else if (!strcmp(o, "--commit-every")) {
            const char *v = cli_value("index", argc, argv, &i);
            if (!v || (commit_every = atoi(v)) < 1 || commit_every > 100000) {
                fprintf(stderr, "imgsim index: --commit-every needs a number from 1 to 100000\n");
                goto bad;
            }
        } else if (!strcmp(o, "--db") || !strcmp(o, "--csv") || !strcmp(o, "--path-column") ||
                   !strcmp(o, "--path-format") || !strcmp(o, "--id-column") ||
                   !strcmp(o, "--label-column") || !strcmp(o, "--box-columns") ||
                   !strcmp(o, "--delimiter")) {
            const char *v = cli_value("index", argc, argv, &i);
            if (!v)
                goto bad;
            if (!strcmp(o, "--db")) dbdir = v;
            else if (!strcmp(o, "--csv")) csv.path = v;
            else if (!strcmp(o, "--path-column")) csv.path_column = v;
            else if (!strcmp(o, "--path-format")) csv.path_format = v;
            else if (!strcmp(o, "--id-column")) csv.id_column = v;
            else if (!strcmp(o, "--label-column")) csv.label_column = v;
            else if (!strcmp(o, "--box-columns")) boxes = (char *)v;
            else {
                if (strlen(v) != 1 && strcmp(v, "\\t") && strcmp(v, "tab")) {
                    fprintf(stderr, "imgsim index: --delimiter takes one character\n");
                    goto bad;
                }
                csv.delim = strlen(v) == 1 ? v[0] : '\t';
            }
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "imgsim index: unknown option %s\n", o);
            goto bad;
        } else {
            folders[nf++] = argv[i];
        }
    }
    if (boxes) {
        char *save, *t = strtok_r(boxes, ",", &save);
        for (int k = 0; k < 4; k++, t = strtok_r(NULL, ",", &save)) {
            if (!t) {
                fprintf(stderr, "imgsim index: --box-columns needs four columns X,Y,W,H\n");
                goto bad;
            }
            csv.box_columns[k] = t;
        }
    }
    if (nf == 0 && !csv.path && !sync && !ann) {
        usage(stderr);
        goto bad;
    }
    if (aa.given && !ann) {
        fprintf(stderr, "imgsim index: index options (--M, --dims, ...) go with --ann\n");
        goto bad;
    }
    if ((csv.path_column || csv.path_format || csv.id_column || csv.label_column) && !csv.path) {
        fprintf(stderr, "imgsim index: --path-column/--id-column/--label-column go with --csv\n");
        goto bad;
    }

    ui u = {0};
    u.tty = isatty(2);
    u.quiet = quiet;
    u.t0 = u.last_line = clock_now();
    imgsim_sources *srcs;
    imgsim_error e = {0};
    if (imgsim_sources_new(&srcs, &e) != IMGSIM_OK) {
        cli_error("index", &e);
        free(folders);
        return 1;
    }
    if (add_sources(srcs, folders, nf, &csv, &u) < 0) {
        imgsim_sources_free(srcs);
        free(folders);
        return 1;
    }
    imgsim_db *db;
    imgsim_model *m;
    if (cli_open_collection("index", cli_db_dir(dbdir), IMGSIM_DB_CREATE, &a, &db, &m) < 0) {
        imgsim_sources_free(srcs);
        free(folders);
        return 1;
    }
    imgsim_ctx *ctx = NULL;
    int rc = 0;
    if (imgsim_ctx_new(m, &ctx, &e) != IMGSIM_OK) {
        cli_error("index", &e);
        rc = 1;
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    imgsim_ingest_opts io;
    imgsim_ingest_opts_default(&io);
    io.on_item = on_item;
    io.on_progress = on_progress;
    io.user = &u;
    io.commit_every = commit_every;
    io.stop = &stop_flag;
    imgsim_ingest_stats st = {0};
    u.t0 = u.last_line = clock_now();
    imgsim_status s = imgsim_db_add(db, ctx, imgsim_sources_items(srcs), imgsim_sources_count(srcs),
                                    &io, &st, &e);
    clear_bar(&u);
    if (s != IMGSIM_OK) {
        cli_error("index", &e);
        rc = 1;
    }
    size_t removed = 0;
    if (rc == 0 && sync && !stop_flag && imgsim_db_sync(db, &removed, &e) != IMGSIM_OK) {
        cli_error("index", &e);
        rc = 1;
    }
    double rate = st.seconds > 0 ? (double)(st.added + st.updated) / st.seconds : 0;
    size_t items = 0;
    imgsim_db_count(db, &items, NULL);
    fprintf(stderr,
            "imgsim index: %s: %zu sources: %zu added, %zu duplicates, %zu unchanged, %zu updated, "
            "%zu failed, %zu bad rows; %zu items, %zu vectors (%.1f s, %.0f images/s)\n",
            cli_db_dir(dbdir), st.total, st.added, st.duplicate, st.unchanged, st.updated,
            st.failed, u.bad_rows, items, imgsim_db_vectors(db), st.seconds, rate);
    if (sync)
        fprintf(stderr, "imgsim index: --sync removed %zu items whose files are gone\n", removed);
    if (ann && rc == 0 && !stop_flag) {
        imgsim_ann_opts ao;
        cli_ann_resolve(db, &aa, &ao);
        int rebuilt = 0;
        if (imgsim_db_ann_sync(db, &ao, &rebuilt, &e) != IMGSIM_OK) {
            cli_error("index", &e);
            rc = 1;
        } else {
            cli_ann_summary(stderr, "index", db, rebuilt ? "rebuilt" : "updated");
        }
    }
    if (stop_flag) {
        fprintf(stderr, "imgsim index: interrupted: everything committed so far is kept; run "
                        "the same command again to resume\n");
        rc = rc ? rc : 130;
    }
    if (rc == 0 && (st.failed || u.bad_rows))
        rc = 3;
out:
    imgsim_ctx_free(ctx);
    imgsim_model_close(m);
    imgsim_db_close(db);
    imgsim_sources_free(srcs);
    free(folders);
    return rc;
bad:
    free(folders);
    return 2;
}

int cmd_remove(int argc, char **argv)
{
    const char *dbdir = NULL;
    const char **ids = calloc((size_t)argc + 1, sizeof *ids);
    size_t n = 0;
    if (!ids)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) {
            if (!(dbdir = cli_value("remove", argc, argv, &i))) {
                free(ids);
                return 2;
            }
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: imgsim remove [--db DIR] ID...\n");
            free(ids);
            return 0;
        } else {
            ids[n++] = argv[i];
        }
    }
    if (n == 0) {
        fprintf(stderr, "usage: imgsim remove [--db DIR] ID...\n");
        free(ids);
        return 2;
    }
    cli_model_args a = {0};
    imgsim_db *db;
    if (cli_open_collection("remove", cli_db_dir(dbdir), IMGSIM_DB_WRITE, &a, &db, NULL) < 0) {
        free(ids);
        return 1;
    }
    size_t removed = 0;
    imgsim_error e = {0};
    int rc = 0;
    if (imgsim_db_remove(db, ids, n, &removed, &e) != IMGSIM_OK) {
        cli_error("remove", &e);
        rc = 1;
    }
    /* the HNSW index, when there is one, follows (whatever was removed before an error) */
    imgsim_error ae = {0};
    if (removed && imgsim_db_ann_sync(db, NULL, NULL, &ae) != IMGSIM_OK) {
        cli_error("remove", &ae);
        rc = 1;
    }
    size_t left = 0;
    imgsim_db_count(db, &left, NULL);
    fprintf(stderr, "imgsim remove: removed %zu of %zu items; %zu items left\n", removed, n, left);
    imgsim_db_close(db);
    free(ids);
    return rc;
}

int cmd_info(int argc, char **argv)
{
    const char *dbdir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) {
            if (!(dbdir = cli_value("info", argc, argv, &i)))
                return 2;
        } else {
            printf("usage: imgsim info [--db DIR]\n");
            return strcmp(argv[i], "-h") && strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    cli_model_args a = {0};
    imgsim_db *db;
    if (cli_open_collection("info", cli_db_dir(dbdir), IMGSIM_DB_READ, &a, &db, NULL) < 0)
        return 1;
    int k = 0, fresh = 0;
    imgsim_metric m;
    imgsim_error e = {0};
    size_t items;
    if (imgsim_db_count(db, &items, &e) != IMGSIM_OK) {
        cli_error("info", &e);
        imgsim_db_close(db);
        return 1;
    }
    printf("collection:  %s\nmodel:       %s (%d-d)\nitems:       %zu\nvectors:     %zu distinct\n",
           cli_db_dir(dbdir), imgsim_db_model(db), imgsim_db_dim(db), items,
           imgsim_db_vectors(db));
    if (imgsim_neighbours_info(db, &k, &m, &fresh, &e) != IMGSIM_OK)
        cli_error("info", &e);
    else if (k)
        printf("neighbours:  top-%d %s, %s\n", k, imgsim_metric_name(m),
               fresh ? "fresh" : "stale (run imgsim neighbours)");
    else
        printf("neighbours:  none (imgsim neighbours builds the table)\n");
    imgsim_ann_info ai;
    if (imgsim_db_ann_info(db, &ai, &e) != IMGSIM_OK)
        cli_error("info", &e);
    else if (ai.status == IMGSIM_ANN_NONE)
        printf("ann index:   none (imgsim ann build makes one)\n");
    else if (ai.status == IMGSIM_ANN_CURRENT || ai.status == IMGSIM_ANN_BEHIND)
        printf("ann index:   %zu vectors, %s (imgsim ann info tells more)\n", ai.nodes,
               imgsim_ann_status_name(ai.status));
    else
        printf("ann index:   %s: %s\n", imgsim_ann_status_name(ai.status), ai.problem);
    imgsim_db_close(db);
    return 0;
}
