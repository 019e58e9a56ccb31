/*
 * vexp.c: exp over arrays through glibc's vector math library (libmvec), the routines GCC
 * itself calls for vectorised loops of expf. The LSTM's gates and the (log-)softmax of the
 * captioning decoder spent a tenth of their time in scalar expf.
 *
 * Every element goes through the same vector routine, the last partial vector padded with
 * zeros, so an element's bits depend on its value only: not on its index, n, or which
 * thread handles it. libmvec's expf is within 4 ulp (glibc's manual), the scalar expf
 * within 1: far inside the tolerances of PyTorch's tests. Without libmvec, or on a target
 * without AVX2, it is a loop of expf.
 */
#include <math.h>
#include <string.h>
#include "kernels/kernels.h"

#if defined(SHARDNET_HAVE_LIBMVEC) && defined(__x86_64__) && (defined(__AVX512F__) || defined(__AVX2__))
#if defined(__AVX512F__)
enum { VL = 16 };
typedef float vexp_vf __attribute__((vector_size(64)));
vexp_vf _ZGVeN16v_expf(vexp_vf x);
#define VEXPF _ZGVeN16v_expf
#else
enum { VL = 8 };
typedef float vexp_vf __attribute__((vector_size(32)));
vexp_vf _ZGVdN8v_expf(vexp_vf x);
#define VEXPF _ZGVdN8v_expf
#endif

void sn_vexpf(float *y, const float *x, size_t n)
{
    size_t i = 0;
    vexp_vf v;
    for (; i + VL <= n; i += VL) {
        memcpy(&v, x + i, sizeof v);
        v = VEXPF(v);
        memcpy(y + i, &v, sizeof v);
    }
    if (i < n) {
        float t[VL] = {0};
        memcpy(t, x + i, (n - i) * sizeof(float));
        memcpy(&v, t, sizeof v);
        v = VEXPF(v);
        memcpy(t, &v, sizeof v);
        memcpy(y + i, t, (n - i) * sizeof(float));
    }
}
#else
void sn_vexpf(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}
#endif
