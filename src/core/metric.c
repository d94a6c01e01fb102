/*
 * metric.c — names of the search metrics (imgsim_metric) for options, output and storage.
 */
#include <string.h>
#include <strings.h>

#include "core/error.h"

const char *imgsim_metric_name(imgsim_metric m)
{
    switch (m) {
    case IMGSIM_METRIC_COSINE: return "cosine";
    case IMGSIM_METRIC_L2: return "l2";
    case IMGSIM_METRIC_L1: return "l1";
    }
    return "?";
}

imgsim_status imgsim_metric_parse(const char *s, imgsim_metric *out, imgsim_error *err)
{
    static const struct { const char *name; imgsim_metric m; } names[] = {
        {"cosine", IMGSIM_METRIC_COSINE}, {"cos", IMGSIM_METRIC_COSINE},
        {"ip", IMGSIM_METRIC_COSINE},     {"l2", IMGSIM_METRIC_L2},
        {"euclidean", IMGSIM_METRIC_L2},  {"l1", IMGSIM_METRIC_L1},
        {"manhattan", IMGSIM_METRIC_L1},  {"cityblock", IMGSIM_METRIC_L1},
    };
    for (size_t i = 0; s && i < sizeof names / sizeof *names; i++)
        if (!strcasecmp(s, names[i].name)) {
            *out = names[i].m;
            return IMGSIM_OK;
        }
    return error_set(err, IMGSIM_E_ARG, "unknown metric '%s' (cosine, l2 or l1)", s ? s : "");
}
