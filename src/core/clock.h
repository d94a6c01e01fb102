/*
 * clock.h — seconds as a double, for progress lines, timings printed to users and benchmarks:
 * clock_now() is monotonic (durations), clock_wall() is the calendar time (stored stamps),
 * clock_ms_since(t0) the milliseconds elapsed since an earlier clock_now().
 */
#ifndef IMGSIM_CORE_CLOCK_H
#define IMGSIM_CORE_CLOCK_H

#include <time.h>

static inline double clock_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double clock_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double clock_ms_since(double t0)
{
    return (clock_now() - t0) * 1e3;
}

#endif
