/*
 * sources.c — turning what a user points at into a list of images to add: every image under
 * a folder, or one image per row of a CSV catalogue (path or path template, id, label, box
 * columns; all other columns kept as a JSON metadata object).
 *
 * The list (struct imgsim_sources, opaque to users) keeps its sources in one growing array
 * and their strings in a chain of blocks it owns.
 *
 * Bad rows never stop the listing: wrong field counts (after folding Myntra-style extra
 * commas into the last column), empty ids or paths, duplicate ids and invalid boxes are
 * reported with file:line and skipped.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grow.h"
#include "core/strmap.h"
#include "ingest/csv.h"
#include "ingest/scan.h"

/* Strings live in a chain of blocks owned by the list. */
typedef struct block {
    struct block *next;
    size_t used, cap;
    char data[];
} block;

struct imgsim_sources {
    imgsim_source *v;
    size_t n, cap;
    block *arena;
};

imgsim_status imgsim_sources_new(imgsim_sources **out, imgsim_error *err)
{
    if (!(*out = calloc(1, sizeof **out)))
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    return IMGSIM_OK;
}

size_t imgsim_sources_count(const imgsim_sources *s)
{
    return s ? s->n : 0;
}

const imgsim_source *imgsim_sources_items(const imgsim_sources *s)
{
    return s ? s->v : NULL;
}

void imgsim_csv_opts_default(imgsim_csv_opts *o)
{
    memset(o, 0, sizeof *o);
    o->delim = ',';
}

static char *keep(imgsim_sources *s, const char *str)
{
    if (!str)
        return NULL;
    size_t n = strlen(str) + 1;
    block *b = s->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        s->arena = b = nb;
    }
    char *p = b->data + b->used;
    memcpy(p, str, n);
    b->used += n;
    return p;
}

void imgsim_sources_free(imgsim_sources *s)
{
    if (!s)
        return;
    for (block *b = s->arena, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    free(s->v);
    free(s);
}

static imgsim_source *push(imgsim_sources *s)
{
    if (grow_array((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v, 256))
        return NULL;
    imgsim_source *x = &s->v[s->n++];
    memset(x, 0, sizeof *x);
    return x;
}

/* ---- folders */

typedef struct dir_ctx {
    imgsim_sources *out;
    const char *prefix;   /* the folder's own name, the first component of every id */
    imgsim_problem_fn fn;
    void *user;
    int nomem;
} dir_ctx;

static int on_entry(void *user, const scan_entry *e, const imgsim_error *perr)
{
    dir_ctx *c = user;
    if (!e) {
        if (c->fn)
            c->fn(c->user, "", perr ? perr->msg : "unreadable entry");
        return 0;
    }
    char id[PATH_MAX + 256], abs[PATH_MAX];
    snprintf(id, sizeof id, "%s/%s", c->prefix, e->rel);
    const char *path = realpath(e->path, abs) ? abs : e->path;
    imgsim_source *x = push(c->out);
    if (!x || !(x->id = keep(c->out, id)) || !(x->path = keep(c->out, path)) ||
        !(x->origin = x->path)) {
        c->nomem = 1;
        return 1;
    }
    return 0;
}

imgsim_status imgsim_sources_from_dir(imgsim_sources *out, const char *dir, imgsim_problem_fn fn,
                                      void *user, imgsim_error *err)
{
    char abs[PATH_MAX];
    if (!realpath(dir, abs))
        return error_set(err, IMGSIM_E_NOTFOUND, "%s: %s", dir, strerror(errno));
    const char *name = strrchr(abs, '/');
    name = name && name[1] ? name + 1 : abs;
    dir_ctx c = {out, name, fn, user, 0};
    imgsim_status s = scan_dir(dir, 1, on_entry, &c, err);
    if (s == IMGSIM_OK && c.nomem)
        s = error_set(err, IMGSIM_E_NOMEM, "out of memory listing %s", dir);
    return s;
}

/* ---- CSV catalogues */

/* Fill a template: "{col}" is replaced by that column's value. */
static int fill_template(const char *tpl, const csv_row *hdr, const csv_row *row, char *out,
                         size_t n, char *why, size_t nwhy)
{
    size_t o = 0;
    for (const char *p = tpl; *p;) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            if (!e) {
                snprintf(why, nwhy, "--path-format: unclosed '{'");
                return -1;
            }
            char col[128];
            size_t l = (size_t)(e - p - 1);
            if (l >= sizeof col)
                l = sizeof col - 1;
            memcpy(col, p + 1, l);
            col[l] = 0;
            int ci = csv_column(hdr, col);
            if (ci < 0) {
                snprintf(why, nwhy, "--path-format: no column '%s'", col);
                return -1;
            }
            const char *v = row->fields[ci];
            size_t vl = strlen(v);
            if (o + vl >= n)
                return -1;
            memcpy(out + o, v, vl);
            o += vl;
            p = e + 1;
        } else {
            if (o + 1 >= n)
                return -1;
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return 0;
}

static int parse_int(const char *s, int *v)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (errno || end == s || *end || d < 0 || d > 1e9)
        return -1;
    *v = (int)(d + 0.5);
    return 0;
}

static void problem(imgsim_problem_fn fn, void *user, const char *file, long line,
                    const char *fmt, const char *arg)
{
    if (!fn)
        return;
    char where[PATH_MAX + 32], msg[512];
    snprintf(where, sizeof where, "%s:%ld", file, line);
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    fn(user, where, msg);
}

imgsim_status imgsim_sources_from_csv(imgsim_sources *out, const imgsim_csv_opts *o,
                                      imgsim_problem_fn fn, void *user, imgsim_error *err)
{
    if (!o || !o->path)
        return error_set(err, IMGSIM_E_ARG, "no CSV file given");
    if (!o->path_column && !o->path_format)
        return error_set(err, IMGSIM_E_ARG,
                         "%s: say which column holds the image path (--path-column) or how to "
                         "build it (--path-format 'images/{id}.jpg')", o->path);
    csv_reader *r;
    imgsim_status s = csv_open(o->path, o->delim ? o->delim : ',', &r, err);
    if (s != IMGSIM_OK)
        return s;
    /* image paths are relative to the CSV's folder */
    char base[PATH_MAX];
    if (!realpath(o->path, base)) {
        csv_close(r);
        return error_set(err, IMGSIM_E_IO, "%s: %s", o->path, strerror(errno));
    }
    char *slash = strrchr(base, '/');
    if (slash)
        *slash = 0;

    csv_row hdr = {0}, row;
    char **hnames = NULL;
    int nh = 0, ci_path = -1, ci_id = -1, ci_label = -1, ci_box[4] = {-1, -1, -1, -1};
    strmap ids = {0};
    /* the header */
    imgsim_error rerr = {0};
    for (;;) {
        s = csv_next(r, &row, &rerr);
        if (s == IMGSIM_E_DECODE)
            continue;
        break;
    }
    if (s != IMGSIM_OK) {
        csv_close(r);
        return s == IMGSIM_E_NOTFOUND ? error_set(err, IMGSIM_E_DECODE, "%s: empty CSV", o->path)
                                      : (err ? (*err = rerr, s) : s);
    }
    nh = row.nfields;
    hnames = calloc((size_t)nh, sizeof *hnames);
    if (!hnames) {
        csv_close(r);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < nh; i++)
        if (!(hnames[i] = keep(out, row.fields[i]))) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            goto done;
        }
    hdr.fields = hnames;
    hdr.nfields = nh;
    hdr.line = row.line;
    struct { const char *name; int *ci; const char *what; } want[] = {
        {o->path_column, &ci_path, "--path-column"}, {o->id_column, &ci_id, "--id-column"},
        {o->label_column, &ci_label, "--label-column"},
        {o->box_columns[0], &ci_box[0], "--box-columns"}, {o->box_columns[1], &ci_box[1], "--box-columns"},
        {o->box_columns[2], &ci_box[2], "--box-columns"}, {o->box_columns[3], &ci_box[3], "--box-columns"},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (want[i].name && (*want[i].ci = csv_column(&hdr, want[i].name)) < 0) {
            s = error_set(err, IMGSIM_E_ARG, "%s: %s: no column '%s' in the header", o->path,
                          want[i].what, want[i].name);
            goto done;
        }
    if (o->path_format) { /* check the template's columns once */
        char buf[16], why[256] = "";
        csv_row probe = hdr;
        if (fill_template(o->path_format, &hdr, &probe, buf, sizeof buf, why, sizeof why) < 0 && *why) {
            s = error_set(err, IMGSIM_E_ARG, "%s: %s", o->path, why);
            goto done;
        }
    }
    for (;;) {
        s = csv_next(r, &row, &rerr);
        if (s == IMGSIM_E_NOTFOUND) {
            s = IMGSIM_OK;
            break;
        }
        if (s == IMGSIM_E_DECODE) {
            if (fn)
                fn(user, o->path, rerr.msg);
            continue;
        }
        if (s != IMGSIM_OK) {
            if (err)
                *err = rerr;
            break;
        }
        if (row.nfields > nh)
            csv_fold_extra(r, &row, nh);
        if (row.nfields != nh) {
            char m[64];
            snprintf(m, sizeof m, "%d", row.nfields);
            char full[128];
            snprintf(full, sizeof full, "%%s fields, the header has %d", nh);
            problem(fn, user, o->path, row.line, full, m);
            continue;
        }
        char relpath[PATH_MAX], why[256] = "";
        if (o->path_format) {
            if (fill_template(o->path_format, &hdr, &row, relpath, sizeof relpath, why, sizeof why) < 0) {
                problem(fn, user, o->path, row.line, "cannot build the path: %s", why);
                continue;
            }
        } else {
            snprintf(relpath, sizeof relpath, "%s", row.fields[ci_path]);
        }
        if (!*relpath || (o->path_column && !*row.fields[ci_path])) {
            problem(fn, user, o->path, row.line, "empty image path%s", "");
            continue;
        }
        char path[PATH_MAX * 2];
        if (relpath[0] == '/')
            snprintf(path, sizeof path, "%s", relpath);
        else
            snprintf(path, sizeof path, "%s/%s", base, relpath);
        const char *id = ci_id >= 0 ? row.fields[ci_id] : relpath;
        if (!*id) {
            problem(fn, user, o->path, row.line, "empty id%s", "");
            continue;
        }
        imgsim_source x = {0};
        x.label = ci_label >= 0 && *row.fields[ci_label] ? row.fields[ci_label] : NULL;
        int bad_box = 0;
        if (ci_box[0] >= 0 && ci_box[1] >= 0 && ci_box[2] >= 0 && ci_box[3] >= 0) {
            int blank = 1;
            for (int k = 0; k < 4; k++)
                blank &= !*row.fields[ci_box[k]];
            if (!blank) {
                for (int k = 0; k < 4; k++)
                    bad_box |= parse_int(row.fields[ci_box[k]], &x.box[k]) != 0;
                bad_box |= x.box[2] < 1 || x.box[3] < 1;
                x.has_box = !bad_box;
            }
        }
        if (bad_box) {
            problem(fn, user, o->path, row.line, "bad box (x, y, w, h must be numbers, w and h > 0)%s", "");
            continue;
        }
        /* metadata: every other column */
        json_t *meta = json_object();
        if (!meta) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        for (int i = 0; i < nh; i++) {
            if (i == ci_path || i == ci_id || i == ci_label || i == ci_box[0] || i == ci_box[1] ||
                i == ci_box[2] || i == ci_box[3] || !*hnames[i])
                continue;
            json_object_set_new(meta, hnames[i], json_string(row.fields[i]));
        }
        char *mj = json_object_size(meta) ? json_dumps(meta, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        json_decref(meta);
        char origin[PATH_MAX + 32];
        snprintf(origin, sizeof origin, "%s:%ld", o->path, row.line);
        char *kid = keep(out, id);
        if (!kid) {
            free(mj);
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        long first = strmap_get(&ids, kid, 1, row.line);
        if (first == -2) {
            free(mj);
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        if (first >= 0) {
            char m[128];
            snprintf(m, sizeof m, "duplicate id '%%s' (first on line %ld)", first);
            problem(fn, user, o->path, row.line, m, id);
            free(mj);
            continue;
        }
        imgsim_source *d = push(out);
        if (!d) {
            free(mj);
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        *d = x;
        d->id = kid;
        d->path = keep(out, path);
        d->label = keep(out, x.label);
        d->meta_json = keep(out, mj);
        d->origin = keep(out, origin);
        int meta_lost = mj && !d->meta_json;
        free(mj);
        if (meta_lost)
            d->meta_json = NULL, d->origin = NULL;
        if (!d->path || (x.label && !d->label) || !d->origin || (mj && !d->meta_json)) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
    }
done:
    free(hnames);
    strmap_free(&ids);
    csv_close(r);
    return s;
}
