/*
 * vips_init.c — one-time libvips start-up for the image stage, and the conversion of
 * libvips' (global) error buffer into a one-line imgsim error.
 */
#include "image/image.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static int vips_init_failed;
static char vips_init_msg[256];

/* libvips reports recoverable oddities (unknown EXIF tags, ...) through g_warning; a library
 * must not print, and real failures reach us as errors anyway. */
static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
    (void)domain, (void)level, (void)msg, (void)data;
}

static void vips_start(void)
{
    if (VIPS_INIT("imgsim")) {
        vips_init_failed = 1;
        const char *e = vips_error_buffer();
        size_t n = strcspn(e, "\n");
        if (n >= sizeof vips_init_msg)
            n = sizeof vips_init_msg - 1;
        memcpy(vips_init_msg, e, n);
        vips_init_msg[n] = '\0';
        vips_error_clear();
        return;
    }
    /* Every image is decoded once: caching operations only costs memory and file handles. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    /* imgsim parallelises across images, not inside one. */
    if (!getenv("VIPS_CONCURRENCY"))
        vips_concurrency_set(1);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO |
                                  G_LOG_LEVEL_DEBUG,
                      quiet_log, NULL);
}

imgsim_status image_vips_init(imgsim_error *err)
{
    pthread_once(&vips_once, vips_start);
    if (vips_init_failed)
        return error_set(err, IMGSIM_E_INTERNAL, "cannot start libvips: %s",
                         vips_init_msg[0] ? vips_init_msg : "unknown reason");
    return IMGSIM_OK;
}

imgsim_status image_vips_fail(imgsim_error *err, imgsim_status code, const char *what)
{
    /* The buffer is process-wide; take it and clear it in one step. */
    char *buf = vips_error_buffer_copy();
    const char *line = buf ? buf : "";
    while (*line == '\n' || *line == ' ')
        line++;
    int n = (int)strcspn(line, "\n");
    /* Trim trailing spaces and a trailing '.' that some loaders add. */
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '.'))
        n--;
    imgsim_status s;
    if (n > 0)
        s = error_set(err, code, "%s: %.*s", what, n, line);
    else
        s = error_set(err, code, "%s", what);
    g_free(buf);
    return s;
}
