/*
 * metrics.h — retrieval quality of a collection: leave-one-out precision@k, recall@k,
 * AP@k and full AP, overall and per label.
 *
 * Items, not vector rows, are what a user ranks: several items may share one vector row
 * (identical files are stored once). Each query item is ranked against every other item;
 * an item's score is the score of its row, so a duplicate of the query ranks first. Ties
 * are broken by item index (lower first).
 *
 * Definitions (k_eff = min(k, candidates), rel_i = 1 when result i has the query's label,
 * R = number of OTHER labelled items with the query's label):
 *   P@k  = (1 / k_eff) * sum_{i<=k_eff} rel_i
 *   R@k  = (1 / R) * sum_{i<=k_eff} rel_i                         (0 when R = 0)
 *   AP@k = (1 / min(k_eff, R)) * sum_{i<=k_eff} P@i * rel_i        (0 when R = 0)
 *   AP   = (1 / R) * sum over the R relevant items of P@(their rank) (full ranking)
 * means are over queries; a label's row averages its own queries. Unlabelled items
 * (label < 0) are neither queries nor candidates. This matches scripts/eval_knn.py.
 */
#ifndef IMGSIM_EVAL_METRICS_H
#define IMGSIM_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "imgsim.h"
#include "index/exact.h"

typedef struct eval_score {
    size_t n;            /* queries counted */
    double p_at_k, r_at_k, map_at_k, map;
} eval_score;

typedef struct eval_result {
    int k;
    eval_score overall;
    int nlabels;
    eval_score *per_label; /* nlabels entries, owned; free with eval_result_free */
} eval_result;

/* Evaluate. `rows` is the vector set; item i has vector row item_row[i] and label
 * item_label[i] in [0, nlabels) or -1. `is_query` (nitems bytes, NULL = every labelled
 * item) picks the queries. `full_map` = 0 skips the full-ranking AP (then map = 0). */
imgsim_status eval_run(const exact_set *rows, imgsim_metric m, const uint32_t *item_row,
                       const int *item_label, size_t nitems, int nlabels,
                       const uint8_t *is_query, int k, int full_map, int threads,
                       eval_result *out, imgsim_error *err);
void eval_result_free(eval_result *r);

/* The metrics of one ranked list (rel[i] for the top `nres` results, R relevant in all),
 * exposed for tests with hand-computed examples. */
void eval_list(const uint8_t *rel, int nres, int k, size_t R, double *p, double *r, double *ap);

#endif
