/*
 * bench_caption.c: times one captioning training step (forward + loss + backward, no
 * optimizer) of the small encoder at crop 112 with Embedding -> LSTM(256, 512) ->
 * Linear(512, V) on synthetic data: batch 32, caption lengths 10..18 (mean 14, the
 * COCO mean with <start>/<end>), fixed seed, so that two builds see the same work. Also
 * times the decoder alone (the frozen-encoder path from body features).
 * Built with the tests, never run by ctest (timings are measurements, not checks).
 *     bench_caption [iters=20] [threads=1] [V=1177] [B=32] [crop=112]
 */
#include <stdio.h>
#include <stdlib.h>
#include "shardnet/caption.h"
#include "shardnet/rng.h"
#include "kernels/kernels.h"
#include "bench_util.h"

enum { MAX_LEN = 20 };

static int fail(void)
{
    fprintf(stderr, "bench_caption: %s\n", sn_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 20, threads = argc > 2 ? atoi(argv[2]) : 1;
    int V = argc > 3 ? atoi(argv[3]) : 1177, B = argc > 4 ? atoi(argv[4]) : 32, crop = argc > 5 ? atoi(argv[5]) : 112;
    int warmup = 3;
    bench_use_better_blas(argv, sn_kernels_better_blas_core());
    if (iters < 1 || threads < 1 || V < 8 || B < 1 || crop < 16) {
        fprintf(stderr, "usage: bench_caption [iters] [threads] [V] [B] [crop]\n");
        return 2;
    }
    sn_kernels_set_threads(threads);
    sn_caption_model_t m;
    if (sn_caption_model_new(&m, V, 256, 512, 1, crop, B, MAX_LEN)) return fail();
    sn_caption_model_reset(&m, 1);
    size_t nimg = (size_t)B * 3 * crop * crop;
    float *img = malloc(nimg * sizeof(float)), *feat = malloc((size_t)B * m.features * sizeof(float));
    int32_t *cap = malloc((size_t)B * MAX_LEN * sizeof(int32_t));
    int *len = malloc((size_t)B * sizeof(int));
    double *full = malloc((size_t)iters * sizeof(double)), *dec = malloc((size_t)iters * sizeof(double));
    double *cfull = malloc((size_t)iters * sizeof(double)), *cdec = malloc((size_t)iters * sizeof(double));
    int tokens = 0;
    for (size_t i = 0; i < nimg; i++) img[i] = 2.0f * sn_rng_uniform(1, 9, 0, 0, i) - 1.0f;
    for (int b = 0; b < B; b++) {
        len[b] = 10 + (int)(9.0f * sn_rng_uniform(1, 9, 1, 0, (uint64_t)b));
        tokens += len[b];
        for (int t = 0; t < MAX_LEN; t++)
            cap[b * MAX_LEN + t] = t == 0 ? SN_CAPTION_START : t == len[b] - 1 ? SN_CAPTION_END
                                 : t < len[b] ? 4 + (int)((V - 4) * sn_rng_uniform(1, 9, 2, (uint64_t)b, (uint64_t)t))
                                 : SN_CAPTION_PAD;
    }
    if (sn_caption_body_features(&m, img, B, feat)) return fail();
    sn_ctx_t ctx = {.training = 1, .seed = 1};
    for (int it = 0; it < warmup + iters; it++) {
        double loss;
        int64_t ntok;
        sn_params_zero_grad(&m.params);
        double c0 = bench_cpu(), t0 = bench_now();
        if (sn_caption_forward_loss(&m, &ctx, img, cap, len, B, &loss, &ntok)) return fail();
        if (sn_caption_backward(&m, 1.0f / (float)ntok)) return fail();
        double t1 = bench_now(), c1 = bench_cpu();
        if (sn_caption_forward_loss_features(&m, &ctx, feat, cap, len, B, &loss, &ntok)) return fail();
        if (sn_caption_backward(&m, 1.0f / (float)ntok)) return fail();
        double t2 = bench_now(), c2 = bench_cpu();
        if (it >= warmup) {
            cfull[it - warmup] = c1 - c0;
            cdec[it - warmup] = c2 - c1;
            full[it - warmup] = t1 - t0;
            dec[it - warmup] = t2 - t1;
        }
    }
    qsort(full, (size_t)iters, sizeof(double), bench_cmp_double);
    qsort(dec, (size_t)iters, sizeof(double), bench_cmp_double);
    qsort(cfull, (size_t)iters, sizeof(double), bench_cmp_double);
    qsort(cdec, (size_t)iters, sizeof(double), bench_cmp_double);
    printf("shardnet caption step B=%d crop=%d V=%d tokens %d threads %d: step %.2f ms (min %.2f), "
           "%.1f images/s; decoder alone %.2f ms (min %.2f); medians over %d iters; cpu: step %.2f ms, decoder %.2f ms\n",
           B, crop, V, tokens, threads, 1e3 * full[iters / 2], 1e3 * full[0], B / full[iters / 2],
           1e3 * dec[iters / 2], 1e3 * dec[0], iters, 1e3 * cfull[iters / 2], 1e3 * cdec[iters / 2]);
    free(img); free(feat); free(cap); free(len); free(full); free(dec); free(cfull); free(cdec);
    sn_caption_model_free(&m);
    return 0;
}
