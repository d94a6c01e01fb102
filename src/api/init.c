/*
 * init.c — imgsim_init, the public one-time start-up of the libraries imgsim stands on:
 * libvips (the image stage) and XNNPACK (the model stage). Both stages also start their
 * library themselves on first use, so calling this is optional; it lives above them so
 * src/core depends on nothing.
 */
#include "image/image.h"
#include "model/model.h"

imgsim_status imgsim_init(const char *argv0, imgsim_error *err)
{
    (void)argv0;
    imgsim_status s = image_vips_init(err);
    return s != IMGSIM_OK ? s : model_xnn_init(err);
}
