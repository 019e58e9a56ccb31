/*
 * bench_layers.c: times one Conv2d forward + backward (input gradient included) of the
 * MNIST ConvNet's second convolution, 16->32 channels, 3x3, on a batch of 32 26x26
 * inputs, with 1 and 2 threads (or the counts given). Built with the tests, never run by
 * ctest: timings are measurements, not pass/fail checks, and this program asserts nothing
 * about them.
 *
 *   bench_layers [--reps N] [--batch B] [--threads 1,2,...]
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kernels.h"
#include "bench_util.h"
#include "layer_util.h"
#include "shardnet/layers.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: bench_layers [--reps N] [--batch B] [--threads 1,2,...]\n"
                "Times Conv2d(16->32, 3x3) forward+backward on B x 16 x 26 x 26 inputs (default B=32,\n"
                "N=20 repetitions after 3 warm-up runs, threads 1,2); prints min and median per thread count.\n");
}

int main(int argc, char **argv)
{
    int reps = 20, B = 32, threads[16] = {1, 2}, nthreads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            B = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = 0;
            for (char *s = strtok(argv[++i], ","); s && nthreads < 16; s = strtok(NULL, ","))
                threads[nthreads++] = atoi(s);
        } else {
            fprintf(stderr, "bench_layers: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (reps < 1 || B < 1 || nthreads < 1) {
        fprintf(stderr, "bench_layers: --reps, --batch and --threads need positive values\n");
        return 2;
    }
    for (int t = 0; t < nthreads; t++)
        if (threads[t] < 1) {
            fprintf(stderr, "bench_layers: thread count %d is not positive\n", threads[t]);
            return 2;
        }

    const int C = 16, H = 26, W = 26, OC = 32, K = 3;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_conv2d_new(&p, "conv2", C, H, W, OC, K, 1, 0, B);
    if (!l || sn_params_alloc(&p)) {
        fprintf(stderr, "bench_layers: %s\n", sn_error_message());
        return 1;
    }
    sn_layer_reset(l, 0);
    size_t nx = (size_t)B * l->in_size, ny = (size_t)B * l->out_size;
    float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    double *ms = malloc((size_t)reps * sizeof(double));
    if (!x || !dy || !ms) {
        fprintf(stderr, "bench_layers: out of memory\n");
        return 1;
    }
    fill_uniform(x, nx, -1, 1, 1);
    fill_uniform(dy, ny, -1, 1, 2);
    sn_ctx_t ctx = {.training = 1};
    /* forward 2*OC*CKK*N, weight gradient and input gradient the same each */
    double gflop = 3.0 * 2.0 * OC * C * K * K * (double)B * l->out_size / OC / 1e9;
    printf("Conv2d %d->%d %dx%d, %dx%d input, batch %d: forward+backward (%.2f GFLOP), %d reps\n",
           C, OC, K, K, H, W, B, gflop, reps);
    for (int t = 0; t < nthreads; t++) {
        sn_kernels_set_threads(threads[t]);
        for (int r = -3; r < reps; r++) {
            double t0 = omp_get_wtime();
            if (sn_layer_forward(l, &ctx, x, B) || sn_layer_backward(l, &ctx, x, dy, B)) {
                fprintf(stderr, "bench_layers: %s\n", sn_error_message());
                return 1;
            }
            double dt = (omp_get_wtime() - t0) * 1e3;
            if (r >= 0) ms[r] = dt;
        }
        qsort(ms, (size_t)reps, sizeof *ms, bench_cmp_double);
        printf("threads %d: min %.2f ms  median %.2f ms  (%.1f GFLOP/s at the median)\n",
               threads[t], ms[0], ms[reps / 2], gflop / (ms[reps / 2] / 1e3));
    }
    free(x);
    free(dy);
    free(ms);
    sn_layer_free(l);
    sn_params_free(&p);
    return 0;
}
