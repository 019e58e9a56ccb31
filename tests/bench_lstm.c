/*
 * bench_lstm.c: times LSTM(256 -> 512) forward + backward on B=32, T=20 (full lengths,
 * input gradient on), the same measurement as
 *     /usr/bin/python3 /work/shared/bench/torch_caption.py --lstm-bench 100 --threads N
 * Built with the tests, never run by ctest (timings do not belong in tests).
 *     bench_lstm [iters=100] [threads=1] [B=32] [T=20] [F=256] [H=512] [layers=1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "shardnet/sequence.h"
#include "shardnet/rng.h"
#include "kernels/kernels.h"
#include "bench_util.h"

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 100, threads = argc > 2 ? atoi(argv[2]) : 1;
    int B = argc > 3 ? atoi(argv[3]) : 32, T = argc > 4 ? atoi(argv[4]) : 20;
    int F = argc > 5 ? atoi(argv[5]) : 256, H = argc > 6 ? atoi(argv[6]) : 512, L = argc > 7 ? atoi(argv[7]) : 1;
    int warmup = 5;
    bench_use_better_blas(argv, sn_kernels_better_blas_core());
    if (iters < 1 || threads < 1) { fprintf(stderr, "usage: bench_lstm [iters] [threads] [B T F H layers]\n"); return 2; }
    sn_kernels_set_threads(threads);
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_lstm_new(&p, "lstm", F, H, L, T, B);
    if (!l || sn_params_alloc(&p)) { fprintf(stderr, "%s\n", sn_error_message()); return 1; }
    sn_layer_reset(l, 0);
    size_t nx = (size_t)B * T * F, ny = (size_t)B * T * H;
    float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    double *fwd = malloc((size_t)iters * sizeof(double)), *tot = malloc((size_t)iters * sizeof(double));
    double *ctot = malloc((size_t)iters * sizeof(double));
    for (size_t i = 0; i < nx; i++) x[i] = 2.0f * sn_rng_uniform(1, 7, 0, 0, i) - 1.0f;
    for (size_t i = 0; i < ny; i++) dy[i] = 2.0f * sn_rng_uniform(1, 7, 1, 0, i) - 1.0f;
    for (int it = 0; it < warmup + iters; it++) {
        double c0 = bench_cpu(), t0 = bench_now();
        if (sn_lstm_forward_seq(l, x, B, T, NULL, NULL, NULL)) { fprintf(stderr, "%s\n", sn_error_message()); return 1; }
        double t1 = bench_now();
        sn_params_zero_grad(&p);
        if (sn_lstm_backward_seq(l, dy, NULL, NULL, NULL, NULL)) { fprintf(stderr, "%s\n", sn_error_message()); return 1; }
        double t2 = bench_now(), c2 = bench_cpu();
        if (it >= warmup) {
            ctot[it - warmup] = c2 - c0;
            fwd[it - warmup] = t1 - t0;
            tot[it - warmup] = t2 - t0;
        }
    }
    double mean = 0.0;
    for (int i = 0; i < iters; i++) mean += tot[i] / iters;
    qsort(fwd, (size_t)iters, sizeof(double), bench_cmp_double);
    qsort(tot, (size_t)iters, sizeof(double), bench_cmp_double);
    qsort(ctot, (size_t)iters, sizeof(double), bench_cmp_double);
    double flop = 3.0 * 2.0 * B * T * 4.0 * H * (F + H) + (L - 1) * 3.0 * 2.0 * B * T * 4.0 * H * (2.0 * H);
    printf("shardnet LSTM(%d,%d) layers %d B=%d T=%d threads %d: fwd %.2f ms, fwd+bwd %.2f ms median "
           "(mean %.2f, min %.2f) over %d iters; %.1f GFLOP/s on the gate matmuls; cpu %.2f ms median\n",
           F, H, L, B, T, threads, 1e3 * fwd[iters / 2], 1e3 * tot[iters / 2], 1e3 * mean, 1e3 * tot[0], iters,
           flop / tot[iters / 2] / 1e9, 1e3 * ctot[iters / 2]);
    free(x); free(dy); free(fwd); free(tot); free(ctot);
    sn_layer_free(l);
    sn_params_free(&p);
    return 0;
}
