/*
 * cmd_serve.c — `imgsim serve`: the HTTP API and the web page over a collection (see
 * docs/API.md). Parses options, starts src/server, prints the URL, waits for SIGINT/SIGTERM
 * and shuts down cleanly.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "server/server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imgsim serve [options]\n"
            "  --db DIR             collection (default $IMGSIM_DB or ./imgsim.db)\n"
            "  --host ADDR          address to listen on (default 127.0.0.1)\n"
            "  --port N             port (default 8080; 0 = any free port, printed)\n"
            "  --threads N          HTTP threads (default slots + queue + 2)\n"
            "  --slots N            requests processed at once: collection handles + model\n"
            "                       contexts (default cores)\n"
            "  --queue N            requests that may wait for a slot before 503 (default 32)\n"
            "  --max-upload SIZE    request body limit, bytes or with K/M suffix (default 20M)\n"
            "  --write-token TOKEN  enable POST/DELETE /api/items for requests carrying it\n"
            "                       (or $IMGSIM_WRITE_TOKEN); without one, writes get 403\n"
            "  --thumb-cache SIZE   thumbnail cache (default 32M)\n"
            "  --quiet              no access log\n");
}

static int parse_size(const char *v, size_t *out)
{
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v)
        return -1;
    if (*end == 'k' || *end == 'K')
        x <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        x <<= 20, end++;
    else if (*end == 'g' || *end == 'G')
        x <<= 30, end++;
    if (*end || x == 0 || x > (1ull << 34))
        return -1;
    *out = (size_t)x;
    return 0;
}

static int parse_num(const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    srv_opts o;
    memset(&o, 0, sizeof o);
    o.port = 8080;
    o.queue = -1;
    const char *dbdir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *op = argv[i], *v;
        if (!strcmp(op, "-h") || !strcmp(op, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(op, "--quiet")) {
            o.quiet = 1;
            continue;
        }
        if (strcmp(op, "--db") && strcmp(op, "--host") && strcmp(op, "--port") &&
            strcmp(op, "--threads") && strcmp(op, "--slots") && strcmp(op, "--queue") &&
            strcmp(op, "--max-upload") && strcmp(op, "--write-token") &&
            strcmp(op, "--thumb-cache")) {
            fprintf(stderr, "imgsim serve: unknown option %s\n", op);
            usage(stderr);
            return 2;
        }
        if (!(v = cli_value("serve", argc, argv, &i)))
            return 2;
        int bad = 0;
        if (!strcmp(op, "--db"))
            dbdir = v;
        else if (!strcmp(op, "--host"))
            o.host = v;
        else if (!strcmp(op, "--port"))
            bad = parse_num(v, 0, 65535, &o.port);
        else if (!strcmp(op, "--threads"))
            bad = parse_num(v, 1, 1024, &o.threads);
        else if (!strcmp(op, "--slots"))
            bad = parse_num(v, 1, 256, &o.slots);
        else if (!strcmp(op, "--queue"))
            bad = parse_num(v, 0, 100000, &o.queue);
        else if (!strcmp(op, "--max-upload"))
            bad = parse_size(v, &o.max_upload);
        else if (!strcmp(op, "--thumb-cache"))
            bad = parse_size(v, &o.thumb_cache);
        else
            o.write_token = v;
        if (bad) {
            fprintf(stderr, "imgsim serve: bad value for %s: %s\n", op, v);
            return 2;
        }
    }
    if (!o.write_token) {
        const char *env = getenv("IMGSIM_WRITE_TOKEN");
        if (env && *env)
            o.write_token = env;
    }
    o.db_dir = cli_db_dir(dbdir);

    /* Block the stop signals in every thread (the server's inherit the mask); wait for them
     * here. SIGPIPE from closed client sockets is ignored. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    server *s = NULL;
    imgsim_error e = {0};
    if (srv_start(&o, &s, &e) != IMGSIM_OK) {
        fprintf(stderr, "imgsim serve: %s: %s\n", o.db_dir, e.msg[0] ? e.msg : imgsim_status_name(e.code));
        return 1;
    }
    const char *host = srv_host(s);
    int v6 = strchr(host, ':') != NULL;
    printf("imgsim serve: http://%s%s%s:%d/ (%zu items, model %s)\n", v6 ? "[" : "", host,
           v6 ? "]" : "", srv_port(s), srv_items(s), srv_model(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "imgsim serve: %s, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    srv_stop(s);
    return 0;
}
