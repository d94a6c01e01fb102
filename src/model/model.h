/*
 * model.h — internal hooks of the model stage used by other stages.
 */
#ifndef IMGSIM_MODEL_MODEL_H
#define IMGSIM_MODEL_MODEL_H

#include "imgsim.h"

imgsim_status model_xnn_init(imgsim_error *err);   /* xnn_initialize, once */
imgsim_model *model_of_ctx(const imgsim_ctx *c);

#endif
