/*
 * resnet.c: torchvision's ResNet bodies (include/shardnet/resnet.h) out of the layer
 * library: Conv2d without bias, BatchNorm2d, ReLU, padded MaxPool2d, Residual, global
 * average pooling. A block is Sequential(Residual(body, downsample or identity), ReLU),
 * so the residual add comes before the last ReLU as in torchvision; the body is built
 * before the downsample so parameters register in the state_dict's order.
 * Must not: allocate parameters itself (the caller's sn_params_alloc does), or name a
 * parameter differently from torchvision's state_dict.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "shardnet/layers.h"
#include "shardnet/resnet.h"
#include "shardnet/sequence.h"

#define BN_ALPHA   0.9f   /* 1 - PyTorch's momentum 0.1 */
#define CONV_FLAGS (SN_CONV_NO_BIAS | SN_CONV_KAIMING_OUT | SN_CONV_BATCHED | SN_CONV_WINOGRAD)
/* the longest name behind the prefix: ".5.0.downsample.1" (17), plus ".running_mean" (13) */
#define PREFIX_MAX 30

typedef struct {
    int bottleneck;   /* 0: BasicBlock (expansion 1), 1: Bottleneck (expansion 4) */
    int blocks[4];
} arch_t;

static int arch_of(int depth, arch_t *a)
{
    static const struct { int depth; arch_t a; } table[] = {
        {18, {0, {2, 2, 2, 2}}}, {34, {0, {3, 4, 6, 3}}}, {50, {1, {3, 4, 6, 3}}},
        {101, {1, {3, 4, 23, 3}}}, {152, {1, {3, 8, 36, 3}}},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].depth == depth) {
            *a = table[i].a;
            return 1;
        }
    return 0;
}

/* out = "<prefix>.<rest>" (or "<rest>" for an empty prefix); the length was checked up front. */
static void name_of(char *out, const char *prefix, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void name_of(char *out, const char *prefix, const char *fmt, ...)
{
    char rest[SN_LAYER_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    /* fits: PREFIX_MAX was checked; truncation would only cut the last characters */
    size_t np = strlen(prefix), nr = strlen(rest), at = 0;
    if (np) {
        at = np < SN_LAYER_NAME_MAX - 2 ? np : SN_LAYER_NAME_MAX - 2;
        memcpy(out, prefix, at);
        out[at++] = '.';
    }
    if (nr > SN_LAYER_NAME_MAX - 1 - at) nr = SN_LAYER_NAME_MAX - 1 - at;
    memcpy(out + at, rest, nr);
    out[at + nr] = '\0';
}

/* 3x3 pad 1 or 1x1 pad 0, stride s: out = (in - 1) / s + 1 either way */
static int out_size(int S, int stride) { return (S - 1) / stride + 1; }

/* conv (no bias) + batch norm [+ ReLU, fused into it] appended to seq; C/S become the output's. */
static int conv_bn(sn_layer_t *seq, sn_params_t *p, const char *blk, const char *conv, const char *bn,
                   int *C, int *S, int OC, int K, int stride, int relu, int B)
{
    char name[SN_LAYER_NAME_MAX];
    int OS = out_size(*S, stride);
    name_of(name, blk, "%s", conv);
    SN_TRY(sn_sequential_add(seq, sn_conv2d_new_opts(p, name, *C, *S, *S, OC, K, stride, K / 2, CONV_FLAGS, B)));
    name_of(name, blk, "%s", bn);
    SN_TRY(sn_sequential_add(seq, relu ? sn_batchnorm2d_relu_new(p, name, OC, OS, OS, BN_ALPHA, B)
                                       : sn_batchnorm2d_new(p, name, OC, OS, OS, BN_ALPHA, B)));
    *C = OC;
    *S = OS;
    return SN_OK;
}

/* Block `blk` ("<prefix>.<layer>.<i>") on (C, S, S) -> (planes * expansion, S', S'). */
static sn_layer_t *block_new(sn_params_t *p, const char *blk, int bottleneck, int C, int S, int planes,
                             int stride, int B)
{
    char name[SN_LAYER_NAME_MAX];
    int OC = bottleneck ? 4 * planes : planes, c = C, s = S, rc;
    name_of(name, blk, "residual");
    sn_layer_t *body = sn_sequential_new(name, B), *down = NULL;
    if (!body) return NULL;
    if (bottleneck) {   /* torchvision v1.5: the stride sits on the 3x3 conv */
        rc = conv_bn(body, p, blk, "conv1", "bn1", &c, &s, planes, 1, 1, 1, B);
        if (!rc) rc = conv_bn(body, p, blk, "conv2", "bn2", &c, &s, planes, 3, stride, 1, B);
        if (!rc) rc = conv_bn(body, p, blk, "conv3", "bn3", &c, &s, OC, 1, 1, 0, B);
    } else {
        rc = conv_bn(body, p, blk, "conv1", "bn1", &c, &s, planes, 3, stride, 1, B);
        if (!rc) rc = conv_bn(body, p, blk, "conv2", "bn2", &c, &s, planes, 3, 1, 0, B);
    }
    if (!rc && (stride != 1 || C != OC)) {
        name_of(name, blk, "downsample");
        int dc = C, ds = S;
        if (!(down = sn_sequential_new(name, B))) rc = SN_ENOMEM;
        if (!rc) rc = conv_bn(down, p, blk, "downsample.0", "downsample.1", &dc, &ds, OC, 1, stride, 0, B);
    }
    if (rc) {
        sn_layer_free(body);
        sn_layer_free(down);
        return NULL;
    }
    name_of(name, blk, "add");
    sn_layer_t *res = sn_residual_new(name, body, down, B);   /* frees both on failure */
    if (!res) return NULL;
    sn_layer_t *seq = sn_sequential_new(blk, B);
    if (!seq) {
        sn_layer_free(res);
        return NULL;
    }
    name_of(name, blk, "relu");
    if (sn_sequential_add(seq, res) || sn_sequential_add(seq, sn_relu_new(name, OC * s * s, B))) {
        sn_layer_free(seq);
        return NULL;
    }
    return seq;
}

static int build(sn_layer_t *net, sn_params_t *p, const char *prefix, const arch_t *a, int size, int B,
                 int *features)
{
    char name[SN_LAYER_NAME_MAX], blk[SN_LAYER_NAME_MAX];
    int C = 3, S = size;
    SN_TRY(conv_bn(net, p, prefix, "0", "1", &C, &S, 64, 7, 2, 1, B));   /* torchvision's 0, 1, 2 (ReLU) */
    name_of(name, prefix, "3");
    int PS = (S + 2 - 3) / 2 + 1;
    SN_TRY(sn_sequential_add(net, sn_maxpool2d_pad_new(name, C, S, S, 3, 2, 1, B)));
    S = PS;
    for (int li = 0; li < 4; li++) {
        int planes = 64 << li, exp = a->bottleneck ? 4 : 1;
        for (int bi = 0; bi < a->blocks[li]; bi++) {
            int stride = li > 0 && bi == 0 ? 2 : 1;
            name_of(blk, prefix, "%d.%d", 4 + li, bi);
            SN_TRY(sn_sequential_add(net, block_new(p, blk, a->bottleneck, C, S, planes, stride, B)));
            C = planes * exp;
            S = out_size(S, stride);
        }
    }
    name_of(name, prefix, "8");
    SN_TRY(sn_sequential_add(net, sn_global_avgpool_new(name, C, S, S, B)));
    if (features) *features = C;
    return SN_OK;
}

sn_layer_t *sn_resnet_body_new(sn_params_t *params, const char *prefix, int depth, int size, int max_batch,
                               int *features)
{
    arch_t a;
    if (!params) { SN_FAIL(SN_EINVAL, "ResNet: no parameter set given"); return NULL; }
    if (!prefix) prefix = "";
    if (!arch_of(depth, &a)) {
        SN_FAIL(SN_EINVAL, "ResNet: depth %d is not one of 18, 34, 50, 101, 152", depth);
        return NULL;
    }
    if (size < 1 || max_batch < 1) {
        SN_FAIL(SN_EINVAL, "ResNet-%d: input size %d and max_batch %d must be >= 1", depth, size, max_batch);
        return NULL;
    }
    if (strlen(prefix) > PREFIX_MAX) {
        SN_FAIL(SN_EINVAL, "ResNet-%d: parameter prefix '%s' is longer than %d characters", depth, prefix,
                PREFIX_MAX);
        return NULL;
    }
    sn_layer_t *net = sn_sequential_new(*prefix ? prefix : "resnet", max_batch);
    if (!net) return NULL;
    if (build(net, params, prefix, &a, size, max_batch, features)) {
        sn_layer_free(net);
        return NULL;
    }
    return net;
}

sn_layer_t *sn_resnet_block_new(sn_params_t *params, const char *name, int bottleneck, int C, int size,
                                int planes, int stride, int max_batch)
{
    if (!params || !name || C < 1 || size < 1 || planes < 1 || stride < 1 || max_batch < 1) {
        SN_FAIL(SN_EINVAL, "ResNet block '%s': bad arguments C=%d size=%d planes=%d stride=%d max_batch=%d",
                name ? name : "", C, size, planes, stride, max_batch);
        return NULL;
    }
    /* the longest name inside a block: ".downsample.1.running_mean" (26) */
    if (strlen(name) + 14 >= SN_LAYER_NAME_MAX || strlen(name) + 26 >= SN_PARAM_NAME_MAX) {
        SN_FAIL(SN_EINVAL, "ResNet block '%s': name too long for its parameter names", name);
        return NULL;
    }
    return block_new(params, name, bottleneck != 0, C, size, planes, stride, max_batch);
}
