/*
 * test_adadelta.c: sn_adadelta_step against torch.optim.Adadelta (fixture adadelta.bin
 * from tests/gen_fixtures.py), and the Adam variant against torch.optim.Adam (adam.bin): several steps on fixed gradients, with and without weight
 * decay, the parameters after every step within 1e-6 of the float64 result (computed from
 * the same float32 start, gradients and hyper-parameters) plus gamma_n of the magnitude
 * |p0| + sum |updates|, n = 8 + 4 steps: each update goes through about eight roundings
 * (weight decay, two running averages, two square roots, a division, two products) and the
 * running averages carry a few more from each earlier step (see test_parity.c for the
 * bound). The largest error against PyTorch's float32 result is printed, not tested.
 * Gradients include tiny ones (eps dominates) and large ones. Also: bad hyper-parameters
 * are refused. ctest runs it with both BLAS kernel families like the parity test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include "layer_util.h"
#include "shardnet/error.h"
#include "shardnet/optim.h"

static void check_optimizer(int adam)
{
    fx_file_t *f = fx_load(adam ? "adam.bin" : "adadelta.bin");
    int ncases = fx_int(f, "n_cases");
    err_stat_t e = ERR_STAT("p");
    int with_wd = 0;
    for (int c = 0; c < ncases; c++) {
        char key[64];
        snprintf(key, sizeof key, "c%d.hp", c);
        const float *hp = fx_f32(f, key);
        snprintf(key, sizeof key, "c%d.p0", c);
        const fx_tensor_t *p0 = fx_get(f, key, FX_F32);
        snprintf(key, sizeof key, "c%d.grads", c);
        const fx_tensor_t *g = fx_get(f, key, FX_F32);
        snprintf(key, sizeof key, "c%d.p_steps", c);
        const float *ref = fx_f32(f, key);
        snprintf(key, sizeof key, "c%d.p_steps_d", c);
        const float *d = fx_f32(f, key);
        snprintf(key, sizeof key, "c%d.p_steps_mag", c);
        const float *mag = fx_f32(f, key);
        size_t n = p0->count;
        int steps = g->dims[0];
        assert_int_equal((size_t)g->dims[1], n);
        float wd = adam ? hp[4] : hp[3];
        with_wd += wd != 0.0f;

        sn_adadelta_t o;
        if (adam) assert_int_equal(sn_adam_init(&o, n, hp[0], hp[1], hp[2], hp[3], hp[4]), 0);
        else assert_int_equal(sn_adadelta_init(&o, n, hp[0], hp[1], hp[2], hp[3]), 0);
        float *p = malloc(n * sizeof(float));
        memcpy(p, p0->data, n * sizeof(float));
        for (int s = 0; s < steps; s++) {
            sn_adadelta_step(&o, p, (const float *)g->data + (size_t)s * n);
            char label[96];
            snprintf(label, sizeof label, "%s lr %g hp %g %g %g wd %g step %d", adam ? "Adam" : "Adadelta",
                     (double)hp[0], (double)hp[1], (double)hp[2], adam ? (double)hp[3] : 0.0, (double)wd, s + 1);
            size_t o = (size_t)s * n;
            assert_true(check_exact(&e, label, p, ref + o, d + o, mag + o, 8 + 4 * (s + 1), n, 1e-6, 0.0));
        }
        assert_int_equal(o.steps, steps);
        free(p);
        sn_adadelta_free(&o);
    }
    assert_true(with_wd >= 1 && with_wd < ncases);   /* both variants are covered */
    print_errors("parity", adam ? "Adam" : "Adadelta", ncases, &e, 1);
    fx_free(f);
}

static void test_adadelta_matches_torch(void **state)
{
    (void)state;
    check_optimizer(0);
}

static void test_adam_matches_torch(void **state)
{
    (void)state;
    check_optimizer(1);
}

static void test_adadelta_rejects_bad_hyperparameters(void **state)
{
    (void)state;
    sn_adadelta_t o;
    assert_int_equal(sn_adadelta_init(&o, 4, -1.0f, 0.9f, 1e-6f, 0.0f), SN_EINVAL);
    assert_int_equal(sn_adadelta_init(&o, 4, 1.0f, 1.5f, 1e-6f, 0.0f), SN_EINVAL);
    assert_int_equal(sn_adadelta_init(&o, 4, 1.0f, 0.9f, -1.0f, 0.0f), SN_EINVAL);
    assert_int_equal(sn_adadelta_init(&o, 4, 1.0f, 0.9f, 1e-6f, -0.1f), SN_EINVAL);
    assert_non_null(strstr(sn_error_message(), "Adadelta"));
    assert_int_equal(sn_adam_init(&o, 4, 1.0f, 1.0f, 0.999f, 1e-8f, 0.0f), SN_EINVAL);
    assert_int_equal(sn_adam_init(&o, 4, -1.0f, 0.9f, 0.999f, 1e-8f, 0.0f), SN_EINVAL);
    assert_non_null(strstr(sn_error_message(), "Adam"));
}

int main(void)
{
    if (blas_core_unavailable()) return run_skipped_group();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adadelta_matches_torch),
        cmocka_unit_test(test_adam_matches_torch),
        cmocka_unit_test(test_adadelta_rejects_bad_hyperparameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
