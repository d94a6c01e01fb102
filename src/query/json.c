/*
 * json.c — search results as JSON (see json.h): the query's description, one object per
 * hit, and the time taken; shared by the CLI and the HTTP server.
 */
#include "query/json.h"

/* obj[key] = s, or nothing when s is not UTF-8. -1 when out of memory. */
static int set_text(json_t *obj, const char *key, const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return json_object_set_new(obj, key, v);
    json_t *raw = json_string_nocheck(s); /* succeeds when only the UTF-8 check failed */
    if (!raw)
        return -1;
    json_decref(raw);
    return 0;
}

json_t *item_metadata_json(const imgsim_item *it)
{
    json_t *meta = it->meta_json ? json_loads(it->meta_json, 0, NULL) : NULL;
    if (json_is_object(meta))
        return meta;
    json_decref(meta);
    return json_object();
}

static json_t *query_json(const imgsim_results *r, const imgsim_query_opts *o,
                          const results_json_opts *jo)
{
    json_t *q = json_object();
    int bad = !q;
    if (!bad && jo->image)
        bad = set_text(q, "image", jo->image) < 0;
    if (!bad && jo->id)
        bad = set_text(q, "id", jo->id) < 0;
    bad = bad || json_object_set_new(q, "k", json_integer(o->k)) < 0 ||
          json_object_set_new(q, "metric", json_string(imgsim_metric_name(o->metric))) < 0;
    if (!bad && r->predicted_label)
        bad = set_text(q, "predicted_label", r->predicted_label) < 0 ||
              json_object_set_new(q, "votes", json_integer(r->votes)) < 0 ||
              json_object_set_new(q, "voters", json_integer(r->voters)) < 0;
    const char *how = r->from_table ? "table" : r->from_ann ? "hnsw" : "exact";
    bad = bad || json_object_set_new(q, "from_table", json_boolean(r->from_table)) < 0 ||
          json_object_set_new(q, "search", json_string(how)) < 0;
    if (!bad && o->ef)
        bad = json_object_set_new(q, "ef", json_integer(o->ef)) < 0;
    if (!bad && r->note)
        bad = set_text(q, "note", r->note) < 0;
    if (bad) {
        json_decref(q);
        return NULL;
    }
    return q;
}

static json_t *hit_json(const imgsim_hit *h, int rank, const results_json_opts *jo)
{
    const imgsim_item *it = &h->item;
    json_t *j = json_object();
    int bad = !j;
    if (!bad && jo->rank)
        bad = json_object_set_new(j, "rank", json_integer(rank)) < 0;
    bad = bad || set_text(j, "id", it->id) < 0 ||
          json_object_set_new(j, "score", json_real(h->score)) < 0 ||
          (it->label ? set_text(j, "label", it->label)
                     : json_object_set_new(j, "label", json_null())) < 0;
    if (!bad && jo->source)
        bad = set_text(j, "source", it->source) < 0;
    bad = bad || json_object_set_new(j, "metadata", item_metadata_json(it)) < 0 ||
          (jo->extra && jo->extra(j, it, jo->user) < 0);
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *query_results_json(const imgsim_results *r, const imgsim_query_opts *o,
                           const results_json_opts *jo, double took_ms)
{
    static const results_json_opts none;
    if (!jo)
        jo = &none;
    json_t *root = json_object(), *arr = json_array();
    /* both calls run: each takes its value, even on failure */
    int bad = json_object_set_new(root, "query", query_json(r, o, jo)) < 0;
    bad |= json_object_set_new(root, "results", arr) < 0;
    for (int i = 0; !bad && i < r->n; i++)
        bad = json_array_append_new(arr, hit_json(&r->hits[i], i + 1, jo)) < 0;
    bad = bad || json_object_set_new(root, "took_ms", json_real(took_ms)) < 0;
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}
