#!/usr/bin/python3
"""ann_hnswlib.py — the peer of bench/ann.c: hnswlib (Debian python3-hnswlib) on the same
files, printing the same JSON lines ("impl": "hnswlib").

    ann_hnswlib.py --set DIR [--ef 10,20,...] [--threads 2] [--repeat 3]

Same parameters as imgsim's defaults: M=16, ef_construction=200. Vectors are L2-normalised
here, outside every timing, and indexed in the 'ip' space (distance 1 - dot: cosine on unit
vectors), so hnswlib does no per-query normalisation work. Build: add_items with
num_threads=THREADS. Queries: one batch knn_query(k=10, num_threads=1) over all queries —
single-threaded, with the Python call overhead paid once per batch, not per query; best of
--repeat passes. Bytes per vector: the size of save_index's file / n (vectors, links and
labels: what hnswlib keeps in memory).
"""
import argparse
import json
import os
import tempfile
import time

import hnswlib
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--set", required=True)
ap.add_argument("--ef", default="10,20,40,80,120,200,400")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--index", help="load this saved index instead of building (no build line), "
                "or save the built one there when it does not exist")
a = ap.parse_args()
name = os.path.basename(a.set.rstrip("/"))

def unit(x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)

base = unit(np.load(os.path.join(a.set, "base.npy")))
q = unit(np.load(os.path.join(a.set, "queries.npy")))
gt = np.load(os.path.join(a.set, "gt.npy"))
n, d = base.shape
k = gt.shape[1]

index = hnswlib.Index(space="ip", dim=d)
if a.index and os.path.exists(a.index):
    index.load_index(a.index, max_elements=n)
else:
    index.init_index(max_elements=n, ef_construction=200, M=16, random_seed=100)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=a.threads)
    build = time.perf_counter() - t
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(a.set))) as tmp:
        path = os.path.join(tmp, "index.bin")
        index.save_index(path)
        size = os.path.getsize(path)
        if a.index:
            os.replace(path, a.index)
    print(json.dumps({"bench": "ann_build", "set": name, "impl": "hnswlib", "config": "f32",
                      "n": n, "dim": d, "threads": a.threads, "seconds": round(build, 2),
                      "bytes_per_vector": round(size / n, 1)}), flush=True)

for ef in [int(e) for e in a.ef.split(",")]:
    index.set_ef(ef)
    best = float("inf")
    for _ in range(a.repeat):
        t = time.perf_counter()
        labels, _ = index.knn_query(q, k=k, num_threads=1)
        best = min(best, time.perf_counter() - t)
    found = sum(len(set(labels[i].tolist()) & set(gt[i].tolist())) for i in range(len(q)))
    print(json.dumps({"bench": "ann_query", "set": name, "impl": "hnswlib", "config": "f32",
                      "ef": ef, "recall": round(found / (len(q) * k), 4),
                      "qps": round(len(q) / best, 1)}), flush=True)
