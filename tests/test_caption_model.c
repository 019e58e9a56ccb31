/*
 * test_caption_model.c: the captioning model (include/shardnet/caption.h) against one
 * training step of the reference PyTorch model (tests/gen_caption_fixtures.py, fixture
 * caption_step.snfx, and caption_step_l2.snfx for a 2-layer LSTM without the encoder's
 * gradients): loss, every parameter gradient, BatchNorm running statistics after
 * the step, greedy captions in evaluation mode; the step is bitwise the same on 1 and 2
 * threads; finite differences of the loss agree with the gradients of both parts.
 * Parameters are loaded into the arena by their PyTorch names; the two largest conv
 * weights are regenerated from the generator's integer hash (see its docstring).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include "shardnet/caption.h"
#include "kernels/kernels.h"

#define ATOL 1e-5
#define RTOL 1e-4

static const fx_tensor_t *fx_find(const fx_file_t *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

/* gen_values() of tests/gen_caption_fixtures.py, bit for bit. */
static void gen_values(float *out, size_t n, uint32_t salt, int log2_bound)
{
    double unit = ldexp(1.0, log2_bound - 23);
    for (size_t i = 0; i < n; i++) {
        uint32_t x = (uint32_t)i + salt * 0x9E3779B9u;
        x ^= x >> 16;
        x *= 0x7FEB352Du;
        x ^= x >> 15;
        x *= 0x846CA68Bu;
        x ^= x >> 16;
        out[i] = (float)((double)((int64_t)(x >> 8) - (1 << 23)) * unit);
    }
}

typedef struct {
    fx_file_t         *f;
    sn_caption_model_t m;
    int                B, L, V;
    const float       *images;
    const int32_t     *captions;
    const int         *lengths;
} fixture_model_t;

/* Builds the model of the fixture and loads every tensor (values and buffers) by name. */
static void setup(fixture_model_t *s, const char *fixture)
{
    s->f = fx_load(fixture);
    fx_file_t *f = s->f;
    s->B = fx_int(f, "B");
    s->L = fx_int(f, "max_len");
    s->V = fx_int(f, "V");
    assert_int_equal(sn_caption_model_new(&s->m, s->V, fx_int(f, "E"), fx_int(f, "H"), fx_int(f, "layers"),
                                          fx_int(f, "crop"), s->B, s->L), 0);
    sn_params_t *p = &s->m.params;
    char key[SN_PARAM_NAME_MAX + 8];
    for (int i = 0; i < p->n; i++) {
        const sn_param_spec_t *sp = &p->specs[i];
        const fx_tensor_t *t = fx_find(f, sp->name);
        if (t) {
            assert_int_equal(t->dtype, FX_F32);
            assert_int_equal(t->count, sp->count);
            memcpy(p->values + sp->offset, t->data, sp->count * sizeof(float));
            continue;
        }
        snprintf(key, sizeof key, "gen.%s", sp->name);
        const int32_t *g = fx_i32(f, key);   /* aborts when the fixture lacks the tensor */
        gen_values(p->values + sp->offset, sp->count, (uint32_t)g[0], g[1]);
    }
    s->images = fx_f32(f, "images");
    s->captions = fx_i32(f, "captions");
    s->lengths = fx_i32(f, "lengths");
}

static void teardown(fixture_model_t *s)
{
    sn_caption_model_free(&s->m);
    fx_free(s->f);
}

/* One training step: zeroed gradients, forward + loss, backward of the mean loss. */
static double step(fixture_model_t *s, int64_t *ntok)
{
    double loss_sum;
    sn_ctx_t ctx = {.training = 1};
    sn_params_zero_grad(&s->m.params);
    assert_int_equal(sn_caption_forward_loss(&s->m, &ctx, s->images, s->captions, s->lengths, s->B,
                                             &loss_sum, ntok), 0);
    assert_int_equal(sn_caption_backward(&s->m, (float)(1.0 / (double)*ntok)), 0);
    return loss_sum / (double)*ntok;
}

static void test_step_parity(void **st)
{
    fixture_model_t s;
    setup(&s, *st);
    fprintf(stderr, "  %s: %d LSTM layer(s)\n", (const char *)*st, s.m.layers);
    int encoder_grads = fx_int(s.f, "encoder_grads");
    int64_t ntok;
    double loss = step(&s, &ntok), ref = ((const double *)fx_get(s.f, "loss", FX_F64)->data)[0];
    fprintf(stderr, "  loss %.9g (PyTorch %.9g), rel err %.3g, %lld tokens\n", loss, ref,
            fabs(loss - ref) / fabs(ref), (long long)ntok);
    assert_int_equal(ntok, fx_int(s.f, "ntok"));
    assert_true(fabs(loss - ref) <= 1e-5 * fabs(ref));

    const sn_params_t *p = &s.m.params;
    char key[SN_PARAM_NAME_MAX + 8];
    double worst = 0.0;
    for (int i = 0; i < p->n; i++) {
        const sn_param_spec_t *sp = &p->specs[i];
        if (!sp->trainable || (!encoder_grads && strncmp(sp->name, "encoder.", 8) == 0)) continue;
        const float *g = p->grads + sp->offset;
        snprintf(key, sizeof key, "d%s", sp->name);
        const fx_tensor_t *t = fx_get(s.f, key, FX_F32);
        snprintf(key, sizeof key, "dstep.%s", sp->name);
        int stride = fx_find(s.f, key) ? fx_int(s.f, key) : 1;
        size_t row = sp->count / (size_t)sp->shape[0], rows = ((size_t)sp->shape[0] + stride - 1) / stride;
        assert_int_equal(t->count, rows * row);
        const float *ref_g = t->data;
        double emax = 0.0, ratio = 0.0;
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < row; j++) {
                double a = g[r * stride * row + j], b = ref_g[r * row + j], e = fabs(a - b);
                if (e > emax) emax = e;
                double q = e / (ATOL + RTOL * fabs(b));
                if (q > ratio) ratio = q;
            }
        fprintf(stderr, "  %-36s max abs err %.3g (%.2f of tolerance)%s\n", sp->name, emax, ratio,
                stride > 1 ? ", every sampled channel" : "");
        if (ratio > worst) worst = ratio;
        assert_true(ratio <= 1.0);
        if (stride > 1) {   /* the whole tensor through sums in double */
            snprintf(key, sizeof key, "dproj.%s", sp->name);
            const double *pr = fx_get(s.f, key, FX_F64)->data;
            snprintf(key, sizeof key, "gen.%s", sp->name);
            const int32_t *gen = fx_i32(s.f, key);
            float *r = malloc(sp->count * sizeof(float));
            assert_non_null(r);
            gen_values(r, sp->count, (uint32_t)gen[0] + 100u, 0);
            double sg = 0.0, sa = 0.0, sgr = 0.0;
            for (size_t j = 0; j < sp->count; j++) {
                sg += g[j];
                sa += fabs((double)g[j]);
                sgr += (double)g[j] * r[j];
            }
            free(r);
            fprintf(stderr, "  %-36s sum(g) err %.3g, sum(g r) err %.3g (of sum|g r| %.3g)\n", sp->name,
                    fabs(sg - pr[0]), fabs(sgr - pr[1]), pr[2]);
            assert_true(fabs(sg - pr[0]) <= ATOL + RTOL * sa);
            assert_true(fabs(sgr - pr[1]) <= ATOL + RTOL * pr[2]);
        }
    }
    fprintf(stderr, "  worst gradient: %.2f of atol %.0e + rtol %.0e\n", worst, ATOL, RTOL);

    /* BatchNorm moving statistics after the step */
    double est = 0.0;
    for (int i = 0; i < p->n; i++) {
        const sn_param_spec_t *sp = &p->specs[i];
        if (sp->trainable) continue;
        snprintf(key, sizeof key, "after.%s", sp->name);
        const fx_tensor_t *t = fx_get(s.f, key, FX_F32);
        assert_int_equal(t->count, sp->count);
        for (size_t j = 0; j < sp->count; j++) {
            double a = p->values[sp->offset + j], b = ((const float *)t->data)[j];
            double e = fabs(a - b) / (1e-6 + 1e-5 * fabs(b));
            if (e > est) est = e;
        }
    }
    fprintf(stderr, "  running statistics: worst %.2f of atol 1e-6 + rtol 1e-5\n", est);
    assert_true(est <= 1.0);

    /* greedy captions, evaluation mode, with the statistics of the step */
    int maxt = fx_int(s.f, "max_tokens");
    int32_t *out = malloc((size_t)s.B * maxt * sizeof(int32_t));
    int *len = malloc((size_t)s.B * sizeof(int));
    assert_int_equal(sn_caption_greedy(&s.m, s.images, s.B, maxt, out, len), 0);
    const int32_t *gref = fx_i32(s.f, "greedy"), *lref = fx_i32(s.f, "greedy_len");
    for (int b = 0; b < s.B; b++) {
        fprintf(stderr, "  greedy row %d:", b);
        for (int t = 0; t < len[b]; t++) fprintf(stderr, " %d", out[(size_t)b * maxt + t]);
        fprintf(stderr, " (PyTorch length %d)\n", lref[b]);
        assert_int_equal(len[b], lref[b]);
        for (int t = 0; t < maxt; t++) assert_int_equal(out[(size_t)b * maxt + t], gref[(size_t)b * maxt + t]);
    }
    /* backward needs its own forward: greedy decoding overwrote the buffers */
    assert_int_equal(sn_caption_backward(&s.m, 1.0f), SN_EINVAL);
    free(out);
    free(len);
    teardown(&s);
}

/* The same step on 1 and 2 threads: identical bits in loss, gradients, statistics, captions. */
static void test_thread_invariance(void **st)
{
    int saved = sn_kernels_threads();
    double loss[2];
    float *grads[2], *values[2];
    int32_t *caps[2];
    size_t total = 0;
    int B = 0, maxt = 20;
    for (int r = 0; r < 2; r++) {
        sn_kernels_set_threads(r + 1);
        fixture_model_t s;
        setup(&s, *st);
        int64_t ntok;
        loss[r] = step(&s, &ntok);
        total = s.m.params.total;
        B = s.B;
        grads[r] = malloc(total * sizeof(float));
        values[r] = malloc(total * sizeof(float));
        caps[r] = malloc((size_t)B * maxt * sizeof(int32_t));
        int len[64];
        assert_true(B <= 64);
        memcpy(grads[r], s.m.params.grads, total * sizeof(float));
        memcpy(values[r], s.m.params.values, total * sizeof(float));
        assert_int_equal(sn_caption_greedy(&s.m, s.images, B, maxt, caps[r], len), 0);
        teardown(&s);
    }
    sn_kernels_set_threads(saved);
    assert_true(memcmp(&loss[0], &loss[1], sizeof loss[0]) == 0);
    assert_true(memcmp(grads[0], grads[1], total * sizeof(float)) == 0);
    assert_true(memcmp(values[0], values[1], total * sizeof(float)) == 0);
    assert_true(memcmp(caps[0], caps[1], (size_t)B * maxt * sizeof(int32_t)) == 0);
    fprintf(stderr, "  1 vs 2 threads: loss, %zu gradient floats, statistics, captions identical\n", total);
    for (int r = 0; r < 2; r++) {
        free(grads[r]);
        free(values[r]);
        free(caps[r]);
    }
}

/* Central differences of the mean loss (training mode) against the gradients, at the
 * largest gradient of a few tensors of each part. */
static void test_gradcheck(void **st)
{
    (void)st;
    static const char *names[] = {
        "encoder.body.body.0.weight", "encoder.body.body.4.weight", "encoder.body.body.9.weight",
        "encoder.linear.weight",      "encoder.bn.bias",            "decoder.embed.weight",
        "decoder.lstm.weight_hh_l0",  "decoder.lstm.bias_ih_l0",    "decoder.linear.weight",
    };
    const float h = 1e-3f;
    fixture_model_t s;
    setup(&s, "caption_step.snfx");
    int64_t ntok;
    step(&s, &ntok);
    sn_params_t *p = &s.m.params;
    sn_ctx_t ctx = {.training = 1};
    double worst = 0.0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const sn_param_spec_t *sp = sn_params_find(p, names[k]);
        assert_non_null(sp);
        size_t best = 0;
        for (size_t j = 1; j < sp->count; j++)
            if (fabsf(p->grads[sp->offset + j]) > fabsf(p->grads[sp->offset + best])) best = j;
        float *w = p->values + sp->offset + best, w0 = *w;
        double ana = p->grads[sp->offset + best], lp, lm;
        int64_t n;
        *w = w0 + h;
        assert_int_equal(sn_caption_forward_loss(&s.m, &ctx, s.images, s.captions, s.lengths, s.B, &lp, &n), 0);
        *w = w0 - h;
        assert_int_equal(sn_caption_forward_loss(&s.m, &ctx, s.images, s.captions, s.lengths, s.B, &lm, &n), 0);
        *w = w0;
        /* divided by the step actually taken in float */
        double num = (lp - lm) / (double)n / ((double)(w0 + h) - (double)(w0 - h));
        double err = fabs(num - ana) / fmax(fabs(ana), 1e-3);
        fprintf(stderr, "  %-28s [%zu] analytic %+.6e numeric %+.6e rel err %.2e\n", names[k], best, ana, num,
                err);
        if (err > worst) worst = err;
        assert_true(err < 2e-2);
    }
    fprintf(stderr, "  gradcheck worst rel err %.2e\n", worst);
    teardown(&s);
}

/* Bad arguments fail with a message and touch nothing. */
static void test_errors(void **st)
{
    (void)st;
    fixture_model_t s;
    setup(&s, "caption_step.snfx");
    double ls;
    int64_t n;
    int bad_len[64];
    assert_true(s.B <= 64);
    memcpy(bad_len, s.lengths, (size_t)s.B * sizeof(int));
    bad_len[1] = s.L + 1;
    assert_int_equal(sn_caption_forward_loss(&s.m, NULL, s.images, s.captions, bad_len, s.B, &ls, &n), SN_EINVAL);
    bad_len[1] = 0;
    assert_int_equal(sn_caption_forward_loss(&s.m, NULL, s.images, s.captions, bad_len, s.B, &ls, &n), SN_EINVAL);
    assert_int_equal(sn_caption_forward_loss(&s.m, NULL, s.images, s.captions, s.lengths, s.B + 1, &ls, &n),
                     SN_EINVAL);
    int32_t *caps = malloc((size_t)s.B * s.L * sizeof(int32_t));
    memcpy(caps, s.captions, (size_t)s.B * s.L * sizeof(int32_t));
    caps[1] = s.V;   /* a real token of row 0 */
    assert_int_equal(sn_caption_forward_loss(&s.m, NULL, s.images, caps, s.lengths, s.B, &ls, &n), SN_ERANGE);
    assert_int_equal(sn_caption_backward(&s.m, 1.0f), SN_EINVAL);
    free(caps);
    sn_caption_model_t m2;
    assert_int_equal(sn_caption_model_new(&m2, 2, 16, 16, 1, 32, 2, 5), SN_EINVAL);
    teardown(&s);
}

/* argv[1] = parity | threads | gradcheck runs one group (one ctest entry each, so that
 * each stays short under the sanitizers); no argument runs all three. */
int main(int argc, char **argv)
{
    const struct CMUnitTest parity[] = {
        cmocka_unit_test_prestate(test_step_parity, "caption_step.snfx"),
        cmocka_unit_test_prestate(test_step_parity, "caption_step_l2.snfx"),
        cmocka_unit_test(test_errors),
    };
    const struct CMUnitTest threads[] = {
        cmocka_unit_test_prestate(test_thread_invariance, "caption_step.snfx"),
        cmocka_unit_test_prestate(test_thread_invariance, "caption_step_l2.snfx"),
    };
    const struct CMUnitTest gradcheck[] = {
        cmocka_unit_test(test_gradcheck),
    };
    const char *g = argc > 1 ? argv[1] : "all";
    int all = strcmp(g, "all") == 0, rc = 0, known = all;
    if (all || strcmp(g, "parity") == 0) { known = 1; rc |= cmocka_run_group_tests_name("parity", parity, NULL, NULL); }
    if (all || strcmp(g, "threads") == 0) { known = 1; rc |= cmocka_run_group_tests_name("threads", threads, NULL, NULL); }
    if (all || strcmp(g, "gradcheck") == 0) { known = 1; rc |= cmocka_run_group_tests_name("gradcheck", gradcheck, NULL, NULL); }
    if (!known) {
        fprintf(stderr, "usage: %s [parity|threads|gradcheck]\n", argv[0]);
        return 2;
    }
    return rc;
}
