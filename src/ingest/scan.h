/*
 * scan.h — finding images: a recursive directory walk that yields every file that is an
 * image by extension or by content (magic bytes, image/sniff.h), and sniffing one file.
 *
 * The walk is deterministic (entries sorted by name within each directory), skips hidden
 * entries (".name"), follows symbolic links to files and to directories but never visits a
 * directory twice (device+inode set, so link loops end), and reports unreadable
 * directories through the callback without stopping.
 */
#ifndef IMGSIM_INGEST_SCAN_H
#define IMGSIM_INGEST_SCAN_H

#include <stdint.h>
#include <sys/types.h>

#include "imgsim.h"

/* 1 if the file name's extension is a known image extension (case-insensitive). */
int scan_has_image_ext(const char *path);
/* Sniff a file by reading its first 32 bytes (image_sniff, image/sniff.h): format or NULL
 * (unreadable or not an image). */
const char *scan_sniff_file(const char *path);

typedef struct scan_entry {
    const char *path;   /* full path (root joined with the relative path) */
    const char *rel;    /* relative to the root, '/'-separated */
    off_t size;
    int64_t mtime_ns;
} scan_entry;

/* Called for each image file (entry != NULL, err == NULL) or for each problem met
 * (entry == NULL, err set: unreadable directory, ...). Return non-zero to stop the walk. */
typedef int (*scan_fn)(void *user, const scan_entry *entry, const imgsim_error *err);

/* Walk `root` (a directory). Files are images when their extension says so, or, with no
 * known image extension, when their content sniffs as one (`sniff_unknown` = 1). */
imgsim_status scan_dir(const char *root, int sniff_unknown, scan_fn fn, void *user,
                       imgsim_error *err);

#endif
