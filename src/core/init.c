/*
 * init.c — one-time initialisation of the libraries imgsim stands on (libvips, XNNPACK).
 */
#include "image/image.h"
#include "model/model.h"

imgsim_status imgsim_init(const char *argv0, imgsim_error *err)
{
    (void)argv0;
    imgsim_status s = image_vips_init(err);
    return s != IMGSIM_OK ? s : model_xnn_init(err);
}
