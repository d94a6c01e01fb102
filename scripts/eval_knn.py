#!/usr/bin/python3
"""eval_knn.py — leave-one-out exact k-NN retrieval quality of a set of image vectors.

Usage:
  /usr/bin/python3 scripts/eval_knn.py VECTORS.npy PATHS.txt LABELS.csv
        [--k 10] [--metric cosine|l2|l1] [--json] [--path-col path] [--label-col label]

Inputs
  VECTORS.npy  N x D array (any float dtype; computed in float32).
  PATHS.txt    N lines, the image path of each row, same order (e.g. OUT.npy.paths as
               written by `imgsim embed`).
  LABELS.csv   CSV with a header; columns `path` and `label` (names changeable with
               --path-col / --label-col). A row of PATHS.txt gets the label of the CSV entry
               whose path is the longest suffix of it, compared by whole path components
               (so "images/0.jpg" matches "build/data/wang1k/images/0.jpg"); failing that,
               the entry with the same basename, if that basename is unique in the CSV.
               Rows with no label are dropped (with a warning on stderr) from both the
               queries and the database.

Method
  Every row is a query against all the other rows (leave-one-out: only the query row itself
  is excluded; duplicates elsewhere stay). Exact search: for cosine the rows are
  L2-normalised and ranked by dot product (descending); for l2 by squared Euclidean
  distance |x|^2 + |y|^2 - 2 x.y (ascending); both use BLAS matmuls on blocks of queries.
  l1 is computed by broadcasting in blocks (ascending). Ties are broken by row index
  (lower first), so results are deterministic.

Metrics (k_eff = min(k, N - 1); rel_i = 1 if the i-th result has the query's label)
  P@k   = (1 / k_eff) * sum_{i<=k_eff} rel_i
  AP@k  = (1 / min(k_eff, R)) * sum_{i<=k_eff} P@i * rel_i,
          with P@i = (1/i) * sum_{j<=i} rel_j and R = number of OTHER rows with the query's
          label (R = 0 gives AP@k = 0). This is 1.0 exactly when the top min(k, R) results
          are all relevant.
  mAP@k = mean of AP@k over all queries; P@k reported is likewise the mean over queries.
  Per-label rows average over the queries of that label only.

Output: a text table (overall, then one line per label), or with --json one JSON object
  {"n", "dim", "k", "metric", "p_at_k", "map_at_k", "unlabelled", "per_label": {label:
  {"n", "p_at_k", "map_at_k"}}}.
Exit status: 0 on success, 2 on bad input.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np


def die(msg):
    sys.stderr.write("eval_knn: %s\n" % msg)
    sys.exit(2)


def norm_path(p):
    p = p.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def load_labels(csv_path, path_col, label_col):
    by_path = {}
    base_paths = {}
    with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
        r = csv.DictReader(f)
        if r.fieldnames is None or path_col not in r.fieldnames or label_col not in r.fieldnames:
            die("%s: need columns %r and %r (have %r)" % (csv_path, path_col, label_col, r.fieldnames))
        for row in r:
            p = norm_path(row[path_col] or "")
            if not p:
                continue
            by_path[p] = row[label_col]
            base_paths.setdefault(os.path.basename(p), []).append(p)
    base_unique = {b: by_path[ps[0]] for b, ps in base_paths.items() if len(set(ps)) == 1}
    return by_path, base_unique


def label_of(p, by_path, base_unique):
    parts = [x for x in norm_path(p).split("/") if x not in ("", ".")]
    for j in range(len(parts)):
        key = "/".join(parts[j:])
        if key in by_path:
            return by_path[key]
    if parts and parts[-1] in base_unique:
        return base_unique[parts[-1]]
    return None


def topk_indices(X, k, metric, block):
    """Return N x k indices of the nearest other rows (self excluded), best first."""
    n = X.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    if metric == "cosine":
        nrm = np.linalg.norm(X, axis=1, keepdims=True)
        nrm[nrm == 0] = 1.0
        Xn = X / nrm
        sq = None
    elif metric == "l2":
        Xn = X
        sq = np.einsum("ij,ij->i", X, X)
    else:
        Xn = X
        sq = None
    if metric == "l1":
        # keep a block's b x N x D temporary near 64 MB
        block = max(1, min(block, int(16e6 // max(1, n * X.shape[1]))))
    for s in range(0, n, block):
        e = min(n, s + block)
        if metric == "cosine":
            score = -(Xn[s:e] @ Xn.T)  # smaller is better everywhere below
        elif metric == "l2":
            score = sq[s:e, None] + sq[None, :] - 2.0 * (X[s:e] @ X.T)
        else:
            score = np.abs(X[s:e, None, :] - X[None, :, :]).sum(axis=2)
        score = score.astype(np.float64, copy=False)
        rows = np.arange(e - s)
        score[rows, np.arange(s, e)] = np.inf
        if k < n:
            part = np.argpartition(score, k - 1, axis=1)[:, :k]
            # ties at the k-th value: make the choice deterministic (lowest index)
            kth = np.take_along_axis(score, part, axis=1).max(axis=1)
            for r in range(e - s):
                cand = part[r]
                nties = np.count_nonzero(score[r] == kth[r])
                if nties > 1:
                    better = np.flatnonzero(score[r] < kth[r])
                    ties = np.flatnonzero(score[r] == kth[r])[: k - better.size]
                    cand = np.concatenate([better, ties])
                sc = score[r, cand]
                out[s + r] = cand[np.lexsort((cand, sc))]
        else:
            idx = np.arange(n)
            for r in range(e - s):
                out[s + r] = np.lexsort((idx, score[r]))[:k]
    return out


def main():
    ap = argparse.ArgumentParser(description="leave-one-out exact k-NN precision@k / mAP@k")
    ap.add_argument("vectors")
    ap.add_argument("paths")
    ap.add_argument("labels")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--metric", choices=["cosine", "l2", "l1"], default="cosine")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--path-col", default="path")
    ap.add_argument("--label-col", default="label")
    ap.add_argument("--block", type=int, default=1024, help="queries per matmul block")
    a = ap.parse_args()
    if a.k < 1:
        die("--k must be >= 1")

    try:
        X = np.load(a.vectors, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        die("%s: %s" % (a.vectors, e))
    if X.ndim != 2:
        die("%s: expected a 2-d array, got shape %r" % (a.vectors, X.shape))
    X = np.ascontiguousarray(X, dtype=np.float32)
    with open(a.paths, encoding="utf-8", errors="replace") as f:
        paths = [ln.rstrip("\r\n") for ln in f if ln.strip()]
    if len(paths) != X.shape[0]:
        die("%s has %d paths but %s has %d rows" % (a.paths, len(paths), a.vectors, X.shape[0]))
    if not np.all(np.isfinite(X)):
        die("%s contains NaN or Inf" % a.vectors)

    by_path, base_unique = load_labels(a.labels, a.path_col, a.label_col)
    labs = [label_of(p, by_path, base_unique) for p in paths]
    keep = [i for i, l in enumerate(labs) if l is not None]
    unl = len(paths) - len(keep)
    if unl:
        ex = [paths[i] for i, l in enumerate(labs) if l is None][:3]
        sys.stderr.write("eval_knn: warning: %d of %d rows have no label (e.g. %s); dropped\n"
                         % (unl, len(paths), ", ".join(ex)))
    if len(keep) < 2:
        die("fewer than 2 labelled rows")
    X = X[keep]
    labs = [labs[i] for i in keep]
    names, y = np.unique(np.array(labs, dtype=object).astype(str), return_inverse=True)
    n = X.shape[0]
    k = min(a.k, n - 1)

    nn = topk_indices(X, k, a.metric, a.block)
    rel = (y[nn] == y[:, None]).astype(np.float64)               # n x k
    counts = np.bincount(y, minlength=len(names))
    R = counts[y] - 1                                             # other relevant rows
    p_at_k = rel.sum(axis=1) / k
    prec_i = np.cumsum(rel, axis=1) / np.arange(1, k + 1)[None, :]
    denom = np.minimum(k, R).astype(np.float64)
    ap_k = np.where(denom > 0, (prec_i * rel).sum(axis=1) / np.maximum(denom, 1), 0.0)

    res = {
        "n": int(n), "dim": int(X.shape[1]), "k": int(k), "metric": a.metric,
        "p_at_k": float(p_at_k.mean()), "map_at_k": float(ap_k.mean()),
        "unlabelled": int(unl), "per_label": {},
    }
    for c, name in enumerate(names):
        m = y == c
        res["per_label"][str(name)] = {
            "n": int(m.sum()), "p_at_k": float(p_at_k[m].mean()), "map_at_k": float(ap_k[m].mean()),
        }
    if a.json:
        print(json.dumps(res))
        return
    print("n=%d dim=%d metric=%s k=%d%s" % (n, X.shape[1], a.metric, k,
                                           (" (unlabelled dropped: %d)" % unl) if unl else ""))
    w = max([len("overall")] + [len(str(s)) for s in names])
    print("%-*s %6s %8s %8s" % (w, "label", "n", "P@%d" % k, "mAP@%d" % k))
    print("%-*s %6d %8.4f %8.4f" % (w, "overall", n, res["p_at_k"], res["map_at_k"]))
    for name, v in res["per_label"].items():
        print("%-*s %6d %8.4f %8.4f" % (w, name, v["n"], v["p_at_k"], v["map_at_k"]))


if __name__ == "__main__":
    main()
