/*
 * bench_resnet.c: times training steps of a ResNet body (include/shardnet/resnet.h):
 * forward in training mode and backward with every parameter gradient (no image gradient,
 * as in the captioning model), at 224x224, batch 32, with 1 and 2 threads (or the values
 * given), and prints images per second, by the wall clock and by the process's CPU time (all
 * threads; on a machine shared with other work the wall clock also counts waiting for a
 * core, the CPU time does not). Like the shardnet CLI, it runs itself again with
 * OPENBLAS_CORETYPE set when OpenBLAS fell back to generic kernels on an AVX-512 or AVX2
 * CPU (a value the user set is kept), and prints the kernel family. Built with the tests, never run by ctest: timings
 * are measurements, not pass/fail checks, and this program asserts nothing about them.
 *
 *   bench_resnet [--depth 18] [--size 224] [--batch 32] [--reps 3] [--threads 1,2]
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kernels/kernels.h"
#include "bench_util.h"
#include "layer_util.h"
#include "shardnet/resnet.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: bench_resnet [--depth 18|34|50|101|152] [--size S] [--batch B] [--reps N] [--threads 1,2,...]\n"
                "Times ResNet body forward (training mode) + backward (parameter gradients) on B x 3 x S x S\n"
                "inputs (default depth 18, S=224, B=32, N=3 after 1 warm-up step, threads 1,2); prints the\n"
                "seconds of each phase and images/s of the best step per thread count.\n");
}

int main(int argc, char **argv)
{
    bench_use_better_blas(argv, sn_kernels_better_blas_core());   /* before strtok rewrites argv */
    int depth = 18, size = 224, B = 32, reps = 3, threads[16] = {1, 2}, nthreads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--depth") && i + 1 < argc) {
            depth = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            size = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            B = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = 0;
            for (char *s = strtok(argv[++i], ","); s && nthreads < 16; s = strtok(NULL, ","))
                threads[nthreads++] = atoi(s);
        } else {
            fprintf(stderr, "bench_resnet: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (reps < 1 || B < 1 || size < 1 || nthreads < 1) {
        fprintf(stderr, "bench_resnet: --reps, --batch, --size and --threads need positive values\n");
        return 2;
    }
    for (int t = 0; t < nthreads; t++)
        if (threads[t] < 1) {
            fprintf(stderr, "bench_resnet: thread count %d is not positive\n", threads[t]);
            return 2;
        }
    sn_params_t p;
    sn_params_init(&p);
    int F;
    sn_layer_t *net = sn_resnet_body_new(&p, "encoder.body", depth, size, B, &F);
    if (!net || sn_params_alloc(&p)) {
        fprintf(stderr, "bench_resnet: %s\n", sn_error_message());
        return 1;
    }
    sn_layer_reset(net, 0);
    net->need_grad_input = 0;
    size_t nx = (size_t)B * net->in_size, ny = (size_t)B * F;
    float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    if (!x || !dy) {
        fprintf(stderr, "bench_resnet: out of memory\n");
        return 1;
    }
    fill_uniform(x, nx, -2, 2, 1);
    fill_uniform(dy, ny, -1, 1, 2);
    sn_ctx_t ctx = {.training = 1};
    printf("ResNet-%d body, %dx%d input, batch %d, %zu parameters: training forward + backward, %d reps "
           "(OpenBLAS %s)\n", depth, size, size, B, sn_params_count(&p), reps, sn_kernels_blas_core());
    for (int t = 0; t < nthreads; t++) {
        sn_kernels_set_threads(threads[t]);
        double best = 1e30, best_f = 0, best_b = 0, best_cpu = 1e30;
        for (int r = -1; r < reps; r++) {
            sn_params_zero_grad(&p);
            clock_t c0 = clock();
            double t0 = omp_get_wtime();
            if (sn_layer_forward(net, &ctx, x, B)) goto fail;
            double t1 = omp_get_wtime();
            if (sn_layer_backward(net, &ctx, x, dy, B)) goto fail;
            double t2 = omp_get_wtime();
            double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
            if (r >= 0 && cpu < best_cpu) best_cpu = cpu;
            if (r >= 0 && t2 - t0 < best) {
                best = t2 - t0;
                best_f = t1 - t0;
                best_b = t2 - t1;
            }
        }
        printf("threads %d: best step %.2f s (forward %.2f s, backward %.2f s): %.2f images/s; "
               "least CPU time %.2f s: %.2f images per CPU-second\n", threads[t], best, best_f, best_b, B / best,
               best_cpu, B / best_cpu);
        fflush(stdout);
    }
    free(x);
    free(dy);
    sn_layer_free(net);
    sn_params_free(&p);
    return 0;
fail:
    fprintf(stderr, "bench_resnet: %s\n", sn_error_message());
    return 1;
}
