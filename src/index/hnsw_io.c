/*
 * hnsw_io.c — the index file: atomic save, and a memory-mapped open that trusts nothing.
 *
 * Layout (little-endian, every section starts on a 64-byte boundary):
 *   header     256 bytes: magic "IMGSIMHN", version, parameters, dimensions, the derived
 *              layout (checked against a recomputation), counts, entry point, section
 *              offsets, a checksum of the payload and one of the header itself
 *   sq8        lo[cdim_pad], step[cdim_pad]                   (HNSW_SQ8 only)
 *   pca        mean[dim], W[out x dim], W mean[out], eig[out] (pca_dims > 0 only)
 *   blocks     nslots level-0 blocks exactly as in memory (hnsw_internal.h)
 *   upper      nupper upper-link blocks of (1 + M) uint32
 * The row map, the free lists and the free upper runs are rebuilt at open (row_limit becomes
 * 1 + the largest row present).
 *
 * Save writes `path.tmp`, fsyncs it, renames it over `path` and fsyncs the directory, so a
 * crash leaves the old file or the new one. Open maps the file MAP_PRIVATE (pages the index
 * later changes are copied, the file never is), verifies both checksums (a 64-bit hash in
 * the style of xxHash64) and then every structural fact the search relies on: sizes, link
 * counts, every neighbour id (in range, not a free slot, present on that level), upper
 * runs inside the pool and not shared, unique rows, the entry point on the top level.
 * Any failure is IMGSIM_E_MODEL ("damaged index file"): rebuild. Opening the 405 MB
 * Myntra index with every check takes 0.06 s (file in the page cache).
 */
#include "index/hnsw_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

#define HNSW_MAGIC "IMGSIMHN"
#define HNSW_VERSION 1u
#define HEADER_BYTES 256

typedef struct file_header {
    char magic[8];
    uint32_t version, header_bytes;
    uint32_t metric, M, ef_construction, ef_search, storage, pca_dims, pca_whiten, dim;
    uint64_t seed;
    uint32_t cdim, cdim_pad, stride, code_bytes, node_off, space;
    uint64_t nslots, nupper, count;
    uint32_t row_limit, entry;
    int32_t max_level;
    uint32_t pad0;
    uint64_t off_sq8, len_sq8, off_pca, len_pca, off_blocks, len_blocks, off_upper, len_upper;
    uint64_t file_bytes;
    uint64_t payload_hash;
    uint64_t header_hash; /* of the header with this field zero */
} file_header;

_Static_assert(sizeof(file_header) <= HEADER_BYTES, "header fits");

/* ------------------------------------------------------------ checksum */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Streaming 4-lane hash over 32-byte chunks (a partial chunk is kept until filled). */
typedef struct hasher {
    uint64_t lane[4];
    uint8_t buf[32];
    size_t nbuf;
    uint64_t total;
} hasher;

static void hash_init(hasher *x)
{
    x->lane[0] = P1 + P2;
    x->lane[1] = P2;
    x->lane[2] = 0;
    x->lane[3] = (uint64_t)0 - P1;
    x->nbuf = 0;
    x->total = 0;
}

static void hash_chunk(hasher *x, const uint8_t *p)
{
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        x->lane[i] = rotl64(x->lane[i] + w * P2, 31) * P1;
    }
}

static void hash_add(hasher *x, const void *data, size_t n)
{
    const uint8_t *p = data;
    x->total += n;
    if (x->nbuf) {
        size_t take = 32 - x->nbuf < n ? 32 - x->nbuf : n;
        memcpy(x->buf + x->nbuf, p, take);
        x->nbuf += take;
        p += take;
        n -= take;
        if (x->nbuf < 32)
            return;
        hash_chunk(x, x->buf);
        x->nbuf = 0;
    }
    for (; n >= 32; p += 32, n -= 32)
        hash_chunk(x, p);
    memcpy(x->buf, p, n);
    x->nbuf = n;
}

static uint64_t hash_end(hasher *x)
{
    uint64_t h = rotl64(x->lane[0], 1) + rotl64(x->lane[1], 7) + rotl64(x->lane[2], 12) +
                 rotl64(x->lane[3], 18);
    h += x->total;
    for (size_t i = 0; i < x->nbuf; i++)
        h = rotl64(h ^ (x->buf[i] * P3), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    hasher x;
    hash_init(&x);
    hash_add(&x, p, n);
    return hash_end(&x);
}

/* ------------------------------------------------------------ save */

static uint64_t align64(uint64_t v) { return (v + 63) & ~(uint64_t)63; }

/* The sections of h's file: offsets and lengths into hd. */
static void plan_sections(const hnsw *h, file_header *hd)
{
    uint64_t off = HEADER_BYTES;
    hd->len_sq8 = h->p.storage == HNSW_SQ8 ? 2 * (uint64_t)h->cdim_pad * sizeof(float) : 0;
    hd->off_sq8 = off;
    off = align64(off + hd->len_sq8);
    hd->len_pca = h->p.pca_dims > 0 ? ((uint64_t)h->dim + (uint64_t)h->cdim * (uint64_t)h->dim +
                                       2 * (uint64_t)h->cdim) * sizeof(float)
                                    : 0;
    hd->off_pca = off;
    off = align64(off + hd->len_pca);
    hd->len_blocks = (uint64_t)h->nslots * h->stride;
    hd->off_blocks = off;
    off = align64(off + hd->len_blocks);
    hd->len_upper = (uint64_t)h->nupper * (uint64_t)(1 + h->M) * sizeof(uint32_t);
    hd->off_upper = off;
    hd->file_bytes = align64(off + hd->len_upper);
}

/* A writer that hashes what it writes. */
typedef struct writer {
    int fd;
    uint64_t pos;
    hasher hs;
    int failed;
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (n == 0)
        return;
    const uint8_t *b = p;
    hash_add(&w->hs, p, n);
    while (n && !w->failed) {
        ssize_t k = write(w->fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->failed = 1;
            break;
        }
        b += k;
        n -= (size_t)k;
        w->pos += (uint64_t)k;
    }
}

/* Zero bytes up to file offset `to`. */
static void pad_to(writer *w, uint64_t to)
{
    static const uint8_t zero[64];
    while (w->pos < to && !w->failed)
        put(w, zero, to - w->pos < 64 ? (size_t)(to - w->pos) : 64);
}

static void fill_header(const hnsw *h, file_header *hd)
{
    memset(hd, 0, sizeof *hd);
    memcpy(hd->magic, HNSW_MAGIC, 8);
    hd->version = HNSW_VERSION;
    hd->header_bytes = HEADER_BYTES;
    hd->metric = (uint32_t)h->p.metric;
    hd->M = (uint32_t)h->p.M;
    hd->ef_construction = (uint32_t)h->p.ef_construction;
    hd->ef_search = (uint32_t)h->p.ef_search;
    hd->storage = (uint32_t)h->p.storage;
    hd->pca_dims = (uint32_t)h->p.pca_dims;
    hd->pca_whiten = (uint32_t)h->p.pca_whiten;
    hd->dim = (uint32_t)h->dim;
    hd->seed = h->p.seed;
    hd->cdim = (uint32_t)h->cdim;
    hd->cdim_pad = (uint32_t)h->cdim_pad;
    hd->stride = (uint32_t)h->stride;
    hd->code_bytes = (uint32_t)h->code_bytes;
    hd->node_off = (uint32_t)h->node_off;
    hd->space = (uint32_t)h->space;
    hd->nslots = h->nslots;
    hd->nupper = h->nupper;
    hd->count = h->count;
    hd->row_limit = h->row_limit;
    hd->entry = h->entry;
    hd->max_level = h->max_level;
    plan_sections(h, hd);
}

/* fsync the directory holding `path`. */
static int sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

imgsim_status hnsw_save(const hnsw *h, const char *path, imgsim_error *err)
{
    if (!h || !path)
        return error_set(err, IMGSIM_E_ARG, "hnsw save: no index or path");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw save: out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    file_header hd;
    fill_header(h, &hd);
    writer w = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (w.fd < 0) {
        imgsim_status st = error_set(err, IMGSIM_E_IO, "%s: cannot create (%s)", tmp,
                                     strerror(errno));
        free(tmp);
        return st;
    }
    uint8_t head[HEADER_BYTES] = {0};
    if (write(w.fd, head, HEADER_BYTES) != HEADER_BYTES)
        w.failed = 1;
    w.pos = HEADER_BYTES;
    hash_init(&w.hs);
    if (hd.len_sq8) {
        pad_to(&w, hd.off_sq8);
        put(&w, h->sq.lo, h->cdim_pad * sizeof(float));
        put(&w, h->sq.step, h->cdim_pad * sizeof(float));
    }
    if (hd.len_pca) {
        pad_to(&w, hd.off_pca);
        put(&w, h->pca.mean, (size_t)h->dim * sizeof(float));
        put(&w, h->pca.w, (size_t)h->cdim * (size_t)h->dim * sizeof(float));
        put(&w, h->pca.wm, (size_t)h->cdim * sizeof(float));
        put(&w, h->pca.eig, (size_t)h->cdim * sizeof(float));
    }
    pad_to(&w, hd.off_blocks);
    put(&w, h->blocks, h->nslots * h->stride);
    pad_to(&w, hd.off_upper);
    put(&w, h->upper, h->nupper * (size_t)(1 + h->M) * sizeof(uint32_t));
    pad_to(&w, hd.file_bytes);
    hd.payload_hash = hash_end(&w.hs);
    hd.header_hash = 0;
    memcpy(head, &hd, sizeof hd);
    hd.header_hash = hash_bytes(head, HEADER_BYTES);
    memcpy(head, &hd, sizeof hd);
    if (!w.failed && pwrite(w.fd, head, HEADER_BYTES, 0) != HEADER_BYTES)
        w.failed = 1;
    int saved = errno;
    if (!w.failed && fsync(w.fd) != 0) {
        w.failed = 1;
        saved = errno;
    }
    if (close(w.fd) != 0 && !w.failed) {
        w.failed = 1;
        saved = errno;
    }
    if (!w.failed && rename(tmp, path) != 0) {
        w.failed = 1;
        saved = errno;
    }
    imgsim_status st = IMGSIM_OK;
    if (w.failed) {
        unlink(tmp);
        st = error_set(err, IMGSIM_E_IO, "%s: cannot write the index (%s)", path,
                       strerror(saved));
    } else if (sync_dir(path) != 0) {
        st = error_set(err, IMGSIM_E_IO, "%s: cannot sync its directory (%s)", path,
                       strerror(errno));
    }
    free(tmp);
    return st;
}

/* ------------------------------------------------------------ open */

/* "damaged" failure naming the path and what was wrong. */
#define DAMAGED(what, ...) error_set(err, IMGSIM_E_MODEL, "%s: damaged index file (" what ")", \
                                     path, ##__VA_ARGS__)

/* A section [off, off + len) lies inside the file, 64-byte aligned, after `prev_end`. */
static int section_ok(uint64_t off, uint64_t len, uint64_t prev_end, uint64_t size)
{
    return off % 64 == 0 && off >= prev_end && off <= size && len <= size - off;
}

/* Parameters, dimensions and derived layout of the header; fills h (not the arrays). */
static imgsim_status check_header(const char *path, const file_header *hd, uint64_t size,
                                  hnsw *h, imgsim_error *err)
{
    hnsw_params p;
    hnsw_params_default(&p);
    p.metric = (imgsim_metric)hd->metric;
    p.M = (int)hd->M;
    p.ef_construction = (int)hd->ef_construction;
    p.ef_search = (int)hd->ef_search;
    p.storage = (hnsw_storage)hd->storage;
    p.pca_dims = (int)hd->pca_dims;
    p.pca_whiten = (int)hd->pca_whiten;
    p.seed = hd->seed;
    if (hd->metric > 16 || hd->M > HNSW_MAX_M || hd->ef_construction > 100000 ||
        hd->ef_search > 100000 || hd->storage > 1 || hd->dim > (1u << 20) ||
        hd->pca_dims > hd->dim || hd->pca_whiten > 1 ||
        (p.metric != IMGSIM_METRIC_COSINE && p.metric != IMGSIM_METRIC_L2) || p.M < 2 ||
        p.ef_construction < 1 || p.ef_search < 1 || hd->dim < 1)
        return DAMAGED("parameters");
    h->p = p;
    h->dim = (int)hd->dim;
    hnsw_layout(h);
    if (hd->cdim != (uint32_t)h->cdim || hd->cdim_pad != h->cdim_pad ||
        hd->stride != h->stride || hd->code_bytes != h->code_bytes ||
        hd->node_off != h->node_off || hd->space != (uint32_t)h->space)
        return DAMAGED("layout");
    if (hd->nslots >= HNSW_NONE || hd->count > hd->nslots || hd->nupper >= HNSW_NONE ||
        (hd->count == 0) != (hd->entry == HNSW_NONE) || hd->max_level > HNSW_MAX_LEVEL ||
        hd->max_level < -1 || (hd->count == 0) != (hd->max_level == -1) ||
        (hd->entry != HNSW_NONE && hd->entry >= hd->nslots))
        return DAMAGED("counts");
    file_header want = *hd;
    h->nslots = hd->nslots;
    h->nupper = hd->nupper;
    plan_sections(h, &want);
    if (want.off_sq8 != hd->off_sq8 || want.len_sq8 != hd->len_sq8 ||
        want.off_pca != hd->off_pca || want.len_pca != hd->len_pca ||
        want.off_blocks != hd->off_blocks || want.len_blocks != hd->len_blocks ||
        want.off_upper != hd->off_upper || want.len_upper != hd->len_upper ||
        want.file_bytes != hd->file_bytes || hd->file_bytes != size)
        return DAMAGED("section sizes: %llu bytes, expected %llu",
                       (unsigned long long)size, (unsigned long long)want.file_bytes);
    if (!section_ok(hd->off_sq8, hd->len_sq8, HEADER_BYTES, size) ||
        !section_ok(hd->off_pca, hd->len_pca, hd->off_sq8 + hd->len_sq8, size) ||
        !section_ok(hd->off_blocks, hd->len_blocks, hd->off_pca + hd->len_pca, size) ||
        !section_ok(hd->off_upper, hd->len_upper, hd->off_blocks + hd->len_blocks, size))
        return DAMAGED("section offsets");
    h->count = hd->count;
    h->row_limit = hd->row_limit;
    h->entry = hd->entry;
    h->max_level = hd->max_level;
    return IMGSIM_OK;
}

/* Point the quantiser and PCA arrays into the mapping and check they are finite. */
static imgsim_status attach_params(const char *path, const file_header *hd, uint8_t *base,
                                   hnsw *h, imgsim_error *err)
{
    if (hd->len_sq8) {
        h->sq.dim_pad = h->cdim_pad;
        h->sq.lo = (float *)(base + hd->off_sq8);
        h->sq.step = h->sq.lo + h->cdim_pad;
        h->sq.owned = 0;
        for (size_t i = 0; i < 2 * h->cdim_pad; i++)
            if (!isfinite(h->sq.lo[i]))
                return DAMAGED("quantiser");
        for (size_t i = 0; i < h->cdim_pad; i++)
            if (h->sq.step[i] < 0 || (i >= (size_t)h->cdim && (h->sq.step[i] || h->sq.lo[i])))
                return DAMAGED("quantiser");
    }
    if (hd->len_pca) {
        float *f = (float *)(base + hd->off_pca);
        h->pca.dim = h->dim;
        h->pca.out = h->cdim;
        h->pca.whiten = h->p.pca_whiten;
        h->pca.mean = f;
        h->pca.w = f + h->dim;
        h->pca.wm = h->pca.w + (size_t)h->cdim * (size_t)h->dim;
        h->pca.eig = h->pca.wm + h->cdim;
        h->pca.owned = 0;
        size_t nf = hd->len_pca / sizeof(float);
        for (size_t i = 0; i < nf; i++)
            if (!isfinite(f[i]))
                return DAMAGED("PCA parameters");
    }
    return IMGSIM_OK;
}

/* Links of one list: count within max, targets live slots present on `level`. */
static int links_ok(const hnsw *h, uint32_t self, const uint32_t *ids, uint32_t n, int max,
                    int level)
{
    if (n > (uint32_t)max)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = ids[i];
        if (t >= h->nslots || t == self)
            return 0;
        const hnsw_node *nd = hnsw_node_at(h, t);
        if ((nd->flags & HNSW_FREE) || (int)nd->level < level)
            return 0;
    }
    return 1;
}

/* Every node: flags, level, row, links, upper run; rebuilds the row map and free lists. */
static imgsim_status check_nodes(const char *path, hnsw *h, imgsim_error *err)
{
    /* the row map covers the largest row present; rows far beyond the node count mean
     * damage (imgsim compacts its rows long before that), and would cost a huge map */
    uint64_t rows = 0;
    for (size_t s = 0; s < h->nslots; s++) {
        const hnsw_node *nd = hnsw_node_at(h, (uint32_t)s);
        if (nd->flags != HNSW_FREE && (uint64_t)nd->row + 1 > rows)
            rows = (uint64_t)nd->row + 1;
    }
    if (rows > 4 * (uint64_t)h->nslots + (1u << 20) || rows > h->row_limit)
        return DAMAGED("row numbers");
    h->row_limit = (uint32_t)rows;
    uint8_t *used = calloc(h->nupper ? h->nupper : 1, 1);
    imgsim_status st = used ? hnsw_reserve_rows(h, (size_t)rows, err)
                            : error_set(err, IMGSIM_E_NOMEM, "hnsw open: out of memory");
    size_t live = 0, nfree = 0;
    int top = -1;
    for (size_t s = 0; s < h->nslots && st == IMGSIM_OK; s++) {
        hnsw_node *nd = hnsw_node_at(h, (uint32_t)s);
        if (nd->flags == HNSW_FREE) {
            nfree++;
            continue;
        }
        if (nd->flags != 0 || nd->level > HNSW_MAX_LEVEL || (int)nd->level > h->max_level ||
            nd->row >= h->row_limit || h->row_node[nd->row] != HNSW_NONE ||
            !links_ok(h, (uint32_t)s, nd->links, nd->nlinks, h->M0, 0)) {
            st = DAMAGED("node %zu", s);
            break;
        }
        if (nd->level == 0 && nd->upper != 0) {
            st = DAMAGED("node %zu links", s);
            break;
        }
        if (nd->level > 0) {
            if ((uint64_t)nd->upper + nd->level > h->nupper) {
                st = DAMAGED("node %zu links", s);
                break;
            }
            for (int l = 1; l <= nd->level && st == IMGSIM_OK; l++) {
                uint32_t *b = hnsw_upper_links(h, nd, l);
                if (used[nd->upper + (uint32_t)l - 1]++ ||
                    !links_ok(h, (uint32_t)s, b + 1, b[0], h->M, l))
                    st = DAMAGED("node %zu links on level %d", s, l);
            }
        }
        if (nd->level > top)
            top = nd->level;
        h->row_node[nd->row] = (uint32_t)s;
        live++;
    }
    if (st == IMGSIM_OK && (live != h->count || top != h->max_level ||
                            (h->entry != HNSW_NONE &&
                             ((hnsw_node_at(h, h->entry)->flags & HNSW_FREE) ||
                              hnsw_node_at(h, h->entry)->level != h->max_level))))
        st = DAMAGED("node count or entry point");
    if (st == IMGSIM_OK && nfree) {
        h->free_slots = malloc(nfree * sizeof(uint32_t));
        if (!h->free_slots)
            st = error_set(err, IMGSIM_E_NOMEM, "hnsw open: out of memory");
        for (size_t s = h->nslots; s-- > 0 && st == IMGSIM_OK;)
            if (hnsw_node_at(h, (uint32_t)s)->flags == HNSW_FREE)
                h->free_slots[h->nfree++] = (uint32_t)s;
        h->cap_free = nfree;
    }
    /* unused upper blocks become free runs of up to HNSW_MAX_LEVEL blocks */
    for (size_t b = 0; b < h->nupper && st == IMGSIM_OK;) {
        if (used[b]) {
            b++;
            continue;
        }
        size_t e = b;
        while (e < h->nupper && !used[e] && e - b < HNSW_MAX_LEVEL)
            e++;
        hnsw_upper_release(h, (uint32_t)b, (int)(e - b));
        b = e;
    }
    free(used);
    return st;
}

/* Validate and adopt a mapping of `size` bytes (unmapped on failure); `path` names it in
 * messages; checksums verified unless `verify` is 0. */
static imgsim_status load(const char *path, uint8_t *base, size_t size, int verify, hnsw **out,
                          imgsim_error *err)
{
    file_header hd;
    memcpy(&hd, base, sizeof hd);
    imgsim_status st = IMGSIM_OK;
    if (memcmp(hd.magic, HNSW_MAGIC, 8) != 0) {
        st = DAMAGED("not an imgsim HNSW index");
    } else if (hd.version != HNSW_VERSION || hd.header_bytes != HEADER_BYTES) {
        st = error_set(err, IMGSIM_E_UNSUPPORTED, "%s: index file version %u (this imgsim "
                       "reads version %u): rebuild it", path, hd.version, HNSW_VERSION);
    } else if (verify) {
        uint8_t head[HEADER_BYTES];
        memcpy(head, base, HEADER_BYTES);
        memset(head + offsetof(file_header, header_hash), 0, sizeof hd.header_hash);
        if (hash_bytes(head, HEADER_BYTES) != hd.header_hash)
            st = DAMAGED("header checksum");
    }
    hnsw *h = NULL;
    if (st == IMGSIM_OK && !(h = calloc(1, sizeof *h)))
        st = error_set(err, IMGSIM_E_NOMEM, "hnsw open: out of memory");
    if (st == IMGSIM_OK) {
        h->map = base;
        h->map_len = size;
        h->entry = HNSW_NONE;
        h->max_level = -1;
        atomic_flag_clear(&h->entry_lock);
        st = check_header(path, &hd, size, h, err);
    }
    if (st == IMGSIM_OK && verify &&
        hash_bytes(base + HEADER_BYTES, size - HEADER_BYTES) != hd.payload_hash)
        st = DAMAGED("checksum");
    if (st == IMGSIM_OK) {
        h->blocks = base + hd.off_blocks;
        h->cap_slots = h->nslots;
        h->upper = (uint32_t *)(base + hd.off_upper);
        h->cap_upper = h->nupper;
        h->owned_blocks = h->owned_upper = 0;
        st = attach_params(path, &hd, base, h, err);
    }
    if (st == IMGSIM_OK)
        st = check_nodes(path, h, err);
    if (st != IMGSIM_OK) {
        if (h)
            hnsw_free(h); /* unmaps */
        else
            munmap(base, size);
        return st;
    }
    *out = h;
    return IMGSIM_OK;
}

imgsim_status hnsw_open(const char *path, hnsw **out, imgsim_error *err)
{
    *out = NULL;
    if (!path)
        return error_set(err, IMGSIM_E_ARG, "hnsw open: no path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_set(err, errno == ENOENT ? IMGSIM_E_NOTFOUND : IMGSIM_E_IO,
                         "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return error_set(err, IMGSIM_E_IO, "%s: cannot stat (%s)", path, strerror(errno));
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < HEADER_BYTES || size > SIZE_MAX) {
        close(fd);
        return DAMAGED("%llu bytes", (unsigned long long)size);
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return error_set(err, IMGSIM_E_IO, "%s: cannot map (%s)", path, strerror(errno));
    return load(path, map, (size_t)size, 1, out, err);
}

imgsim_status hnsw_open_memory(const void *data, size_t len, int verify, hnsw **out,
                               imgsim_error *err)
{
    const char *path = "(memory)";
    *out = NULL;
    if (len < HEADER_BYTES)
        return DAMAGED("%zu bytes", len);
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw open: cannot map %zu bytes", len);
    memcpy(map, data, len);
    return load(path, map, len, verify, out, err);
}

void hnsw_file_rehash(void *data, size_t len)
{
    uint8_t *b = data;
    if (len < HEADER_BYTES)
        return;
    file_header hd;
    memcpy(&hd, b, sizeof hd);
    hd.payload_hash = hash_bytes(b + HEADER_BYTES, len - HEADER_BYTES);
    hd.header_hash = 0;
    memcpy(b, &hd, sizeof hd);
    hd.header_hash = hash_bytes(b, HEADER_BYTES);
    memcpy(b, &hd, sizeof hd);
}
