/*
 * testutil.h — helpers shared by the cmocka tests: where the real models and images are
 * (../shared, or $IMGSIM_SHARED), the extracted test collections ($IMGSIM_DATA), scratch
 * files ($IMGSIM_TEST_OUT), and small file utilities.
 */
#ifndef IMGSIM_TESTS_TESTUTIL_H
#define IMGSIM_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "imgsim.h"

/* Path under the shared directory, e.g. tu_shared("models/x.tflite"). Static buffer ring. */
const char *tu_shared(const char *rel);
/* Path under the extracted data directory (wang1k/images/0.jpg). */
const char *tu_data(const char *rel);
/* Path under the test output directory (created). */
const char *tu_out(const char *rel);
/* Whole file into a malloc'ed buffer; fails the test if unreadable. */
uint8_t *tu_read(const char *path, size_t *len);
void tu_write(const char *path, const void *data, size_t len);
double tu_cosine(const float *a, const float *b, int n);
/* Open a model file from shared/models by file name, failing the test on error. */
imgsim_model *tu_model(const char *file, imgsim_precision prec);

#endif
