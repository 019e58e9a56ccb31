/* bench_util.h: clocks and ordering for the benchmark programs of tests/ (built, never run
 * by ctest). */
#ifndef SHARDNET_TESTS_BENCH_UTIL_H
#define SHARDNET_TESTS_BENCH_UTIL_H
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline double bench_clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static inline double bench_now(void) { return bench_clock_s(CLOCK_MONOTONIC); }

/* CPU seconds of all threads: on a shared machine, unlike wall time, it leaves out the
 * time this process waited for a core (with 1 thread it is the work done). */
static inline double bench_cpu(void) { return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* qsort order of doubles, for medians and minima. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
/* Runs this program again with OPENBLAS_CORETYPE=better (sn_kernels_better_blas_core():
 * the kernels the shardnet command would re-run itself with) unless the user set it or
 * better is NULL. Call it before argv is modified. On failure the generic kernels are timed. */
static inline void bench_use_better_blas(char **argv, const char *better)
{
    if (getenv("OPENBLAS_CORETYPE") || !better || setenv("OPENBLAS_CORETYPE", better, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE");
}
#endif
