/*
 * scan.c — finding images on disk (scan.h): sniffing a file's first bytes (image/sniff.h),
 * the image-extension list, and the recursive directory walk.
 *
 * The walk reads a whole directory into a sorted list of names and closes it before
 * descending, so it holds one directory handle at a time however deep the tree is. Every
 * entry is stat()ed (following symbolic links); directories are remembered by device and
 * inode in a small open-addressing hash set, so a link loop or a second link to the same
 * directory is skipped silently, and so are dangling links and loops of links (they name
 * no file). Problems (a directory that cannot be opened or read, an entry that cannot be
 * stat()ed for another reason) go to the callback and the walk continues; only running out
 * of memory or a root that cannot be opened stops it.
 */
#include "ingest/scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/grow.h"
#include "image/sniff.h"

#define SNIFF_BYTES 32

/* ------------------------------------------------------------ sniffing and extensions */

int scan_has_image_ext(const char *path)
{
    static const char *const exts[] = {
        "jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "tif", "tiff", "bmp",
        "heic", "heif", "avif", "jxl", "jp2", "j2k", "jpf", "jpx",
        "pgm", "ppm", "pnm", "pbm", "pfm",
    };
    if (!path)
        return 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1]) /* ".jpg" alone is a hidden name, not an extension */
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return 1;
    return 0;
}

const char *scan_sniff_file(const char *path)
{
    if (!path)
        return NULL;
    /* O_NONBLOCK: opening a FIFO must not hang; only regular files are read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    uint8_t head[SNIFF_BYTES];
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t n = read(fd, head + got, sizeof head - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return image_sniff(head, got);
}

/* ------------------------------------------------------------ visited directories */

typedef struct dir_id {
    dev_t dev;
    ino_t ino;
    int used;
} dir_id;

typedef struct dir_set {
    dir_id *slots;
    size_t cap, n;   /* cap is a power of two, kept at most half full */
} dir_set;

static size_t dir_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

/* Add (dev, ino): 1 if newly added, 0 if already present, -1 out of memory. */
static int dir_set_add(dir_set *s, dev_t dev, ino_t ino)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        dir_id *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i].used)
                continue;
            size_t j = dir_hash(s->slots[i].dev, s->slots[i].ino) & (ncap - 1);
            while (ns[j].used)
                j = (j + 1) & (ncap - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    size_t j = dir_hash(dev, ino) & (s->cap - 1);
    while (s->slots[j].used) {
        if (s->slots[j].dev == dev && s->slots[j].ino == ino)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = (dir_id){dev, ino, 1};
    s->n++;
    return 1;
}

/* ------------------------------------------------------------ the walk */

typedef struct walk {
    int sniff_unknown;
    scan_fn fn;
    void *user;
    dir_set seen;
    int stopped;          /* the callback asked to stop */
    imgsim_status fatal;  /* out of memory */
    imgsim_error *err;
} walk;

/* Tell the callback about a problem; sets w->stopped if it says stop. */
static void report(walk *w, imgsim_status code, const char *path, const char *what, int e)
{
    imgsim_error pe = {0};
    if (e)
        error_set(&pe, code, "%s: %s: %s", path, what, strerror(e));
    else
        error_set(&pe, code, "%s: %s", path, what);
    if (w->fn(w->user, NULL, &pe))
        w->stopped = 1;
}

static void fail_nomem(walk *w, const char *path)
{
    w->fatal = error_set(w->err, IMGSIM_E_NOMEM, "%s: out of memory while scanning", path);
}

/* "a" + "/" + "b" (just "b" when `a` is empty, no second '/' when `a` is "/"), malloc'ed. */
static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    if (la && a[la - 1] != '/')
        s[la++] = '/';
    memcpy(s + la, b, lb + 1);
    return s;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The non-hidden names in directory `path`, sorted. Returns 0 and sets *out and *n, or -1 after
 * reporting (unreadable: reported via callback; out of memory: w->fatal). On a read error
 * midway, the names read so far are kept and the error reported. */
static int list_dir(walk *w, const char *path, int is_root, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d) {
        int e = errno;
        if (is_root)
            w->fatal = error_set(w->err, e == ENOENT ? IMGSIM_E_NOTFOUND : IMGSIM_E_IO,
                                 "%s: cannot open directory: %s", path, strerror(e));
        else
            report(w, IMGSIM_E_IO, path, "cannot open directory", e);
        return -1;
    }
    char **names = NULL;
    size_t cnt = 0, cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                report(w, IMGSIM_E_IO, path, "cannot read directory", errno);
            break;
        }
        if (de->d_name[0] == '.') /* hidden, and "." / ".." */
            continue;
        if (grow_array((void **)&names, &cap, cnt + 1, sizeof *names, 32))
            goto nomem;
        names[cnt] = strdup(de->d_name);
        if (!names[cnt])
            goto nomem;
        cnt++;
    }
    closedir(d);
    if (cnt > 1)
        qsort(names, cnt, sizeof *names, cmp_name);
    *out = names;
    *n = cnt;
    return 0;

nomem:
    closedir(d);
    free_names(names, cnt);
    fail_nomem(w, path);
    return -1;
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Walk directory `path` (relative path `rel`, "" for the root) in name order. */
static void walk_dir(walk *w, const char *path, const char *rel, int is_root)
{
    char **names;
    size_t n;
    if (list_dir(w, path, is_root, &names, &n) != 0)
        return;

    for (size_t i = 0; i < n && !w->stopped && w->fatal == IMGSIM_OK; i++) {
        char *full = join(path, names[i]);
        char *r = join(rel, names[i]);
        if (!full || !r) {
            free(full);
            free(r);
            fail_nomem(w, path);
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0) {
            int e = errno;
            struct stat lst;
            /* A dangling symbolic link, or one in a loop of links, names no file:
             * nothing to report. */
            if (!((e == ENOENT || e == ELOOP) && lstat(full, &lst) == 0 &&
                  S_ISLNK(lst.st_mode)))
                report(w, IMGSIM_E_IO, full, "cannot stat", e);
        } else if (S_ISDIR(st.st_mode)) {
            int added = dir_set_add(&w->seen, st.st_dev, st.st_ino);
            if (added < 0)
                fail_nomem(w, full);
            else if (added > 0)
                walk_dir(w, full, r, 0);
        } else if (S_ISREG(st.st_mode)) {
            int yes = scan_has_image_ext(names[i]) ||
                      (w->sniff_unknown && scan_sniff_file(full) != NULL);
            if (yes) {
                scan_entry e = {full, r, st.st_size, mtime_ns(&st)};
                if (w->fn(w->user, &e, NULL))
                    w->stopped = 1;
            }
        }
        free(full);
        free(r);
    }
    free_names(names, n);
}

imgsim_status scan_dir(const char *root, int sniff_unknown, scan_fn fn, void *user,
                       imgsim_error *err)
{
    if (!root || !*root || !fn)
        return error_set(err, IMGSIM_E_ARG, "scan_dir: no root directory or callback");
    struct stat st;
    if (stat(root, &st) != 0)
        return error_set(err, errno == ENOENT ? IMGSIM_E_NOTFOUND : IMGSIM_E_IO,
                         "%s: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return error_set(err, IMGSIM_E_ARG, "%s: not a directory", root);

    /* Drop trailing slashes so joined paths read "root/a.jpg" (but keep "/"). */
    size_t len = strlen(root);
    while (len > 1 && root[len - 1] == '/')
        len--;
    char *base = strndup(root, len);
    if (!base)
        return error_set(err, IMGSIM_E_NOMEM, "%s: out of memory while scanning", root);

    walk w = {.sniff_unknown = sniff_unknown, .fn = fn, .user = user, .err = err};
    if (dir_set_add(&w.seen, st.st_dev, st.st_ino) < 0)
        fail_nomem(&w, root);
    else
        walk_dir(&w, base, "", 1);
    free(base);
    free(w.seen.slots);
    return w.fatal;
}
