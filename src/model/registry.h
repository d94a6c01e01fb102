/*
 * registry.h — internal side of the model registry (registry.c): built-in manifests and
 * manifest files.
 */
#ifndef IMGSIM_MODEL_REGISTRY_H
#define IMGSIM_MODEL_REGISTRY_H

#include "imgsim.h"

const imgsim_manifest *registry_builtin(const char *name);
const imgsim_manifest *registry_builtin_by_sha(const char *sha256);
imgsim_status registry_read_manifest(const char *path, imgsim_manifest *m, imgsim_error *err);
imgsim_status registry_write_manifest(const imgsim_manifest *m, const char *path,
                                      imgsim_error *err);

#endif
