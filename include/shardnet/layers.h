/*
 * layers.h: constructors of the layer library.
 *
 * Every constructor registers the layer's parameters in `params` (may be NULL for
 * layers without parameters) under "name.weight", "name.bias", ... and returns NULL
 * with sn_error_message() set on failure. Shapes are per sample; max_batch sizes the
 * buffers. Parameter values become valid after sn_params_alloc and sn_layer_reset.
 */
#ifndef SHARDNET_LAYERS_H
#define SHARDNET_LAYERS_H
#include "shardnet/layer.h"

/* y = x W^T + b.  x (B, in), W (out, in), b (out), y (B, out). */
sn_layer_t *sn_linear_new(sn_params_t *params, const char *name, int in, int out, int max_batch);

/* 2-D convolution, NCHW. x (B,C,H,W), W (OC,C,K,K), b (OC), y (B,OC,OH,OW). */
sn_layer_t *sn_conv2d_new(sn_params_t *params, const char *name, int C, int H, int W,
                          int OC, int K, int stride, int pad, int max_batch);
/* Options of sn_conv2d_new_opts (OR them):
 *   SN_CONV_NO_BIAS      no bias (PyTorch's bias=False): only "name.weight" is registered
 *   SN_CONV_KAIMING_OUT  reset draws W ~ N(0, 2/(OC*K*K)), PyTorch's
 *                        kaiming_normal_(mode="fan_out", nonlinearity="relu") (torchvision's
 *                        ResNet init), from the counter RNG; the bias, if any, stays uniform
 *   SN_CONV_BATCHED      when the layer has fewer output positions than output channels, one
 *                        GEMM over the whole batch instead of one per sample (faster, and no
 *                        per-sample weight-gradient partials of B times the weights); sums
 *                        then run in another order, so results differ by rounding. Opt-in:
 *                        models built before it keep their exact numbers
 *   SN_CONV_WINOGRAD     for 3x3 kernels with stride 1 and padding 1 (ignored otherwise; it
 *                        takes precedence over SN_CONV_BATCHED): the forward, the input
 *                        gradient and the weight gradient by Winograd F(2x2, 3x3), 2.25x fewer
 *                        multiply-adds; results differ from im2col's by rounding */
enum { SN_CONV_NO_BIAS = 1u, SN_CONV_KAIMING_OUT = 2u, SN_CONV_BATCHED = 4u, SN_CONV_WINOGRAD = 8u };
sn_layer_t *sn_conv2d_new_opts(sn_params_t *params, const char *name, int C, int H, int W,
                               int OC, int K, int stride, int pad, unsigned flags, int max_batch);

/* Max pooling, no padding, floor mode. x (B,C,H,W), y (B,C,(H-K)/S+1,(W-K)/S+1). */
sn_layer_t *sn_maxpool2d_new(const char *name, int C, int H, int W, int K, int stride, int max_batch);
/* The same with PyTorch's implicit -inf padding P (0 <= P <= K/2), floor mode:
 * y (B,C,(H+2P-K)/S+1,(W+2P-K)/S+1); ResNet's stem is K=3, S=2, P=1. */
sn_layer_t *sn_maxpool2d_pad_new(const char *name, int C, int H, int W, int K, int stride, int pad,
                                 int max_batch);

/* Reshapes (C,H,W) to (C*H*W); output aliases the input, no copy. */
sn_layer_t *sn_flatten_new(const char *name, int ndim, const int *shape, int max_batch);

/* Elementwise activations over a sample of `n` floats. */
sn_layer_t *sn_relu_new(const char *name, int n, int max_batch);
sn_layer_t *sn_leaky_relu_new(const char *name, int n, float slope, int max_batch);
sn_layer_t *sn_elu_new(const char *name, int n, float alpha, int max_batch);
/* PyTorch's Softplus(beta=1, threshold=20): x > 20 gives x. */
sn_layer_t *sn_softplus_new(const char *name, int n, int max_batch);

/* Row-wise over (B, n); numerically stable (max subtraction). */
sn_layer_t *sn_softmax_new(const char *name, int n, int max_batch);
sn_layer_t *sn_log_softmax_new(const char *name, int n, int max_batch);

/* Inverted dropout: kept values scaled by 1/(1-p); the mask of element e of sample s at
 * step t is a pure function of (seed, layer, t, s, e). Identity in evaluate mode or p=0. */
sn_layer_t *sn_dropout_new(const char *name, int n, float p, int max_batch);

/* Batch normalisation over (B, n) without affine parameters. Training uses batch statistics
 * (biased variance for normalising) and updates moving = alpha*moving + (1-alpha)*batch
 * (unbiased variance for the moving variance, as PyTorch); evaluate uses moving statistics. */
#define SN_BN_EPS 1e-5f
sn_layer_t *sn_batchnorm_new(sn_params_t *params, const char *name, int n, float alpha, int max_batch);

/* Per-feature affine y = gamma * x + beta over (B, n). gamma=1, beta=0 at reset. */
sn_layer_t *sn_scaling_new(sn_params_t *params, const char *name, int n, int max_batch);

/* A container that is itself a layer. Layers are added in order; the sequential owns them. */
sn_layer_t *sn_sequential_new(const char *name, int max_batch);
int         sn_sequential_add(sn_layer_t *seq, sn_layer_t *layer);
int         sn_sequential_count(const sn_layer_t *seq);
sn_layer_t *sn_sequential_get(const sn_layer_t *seq, int i);

#endif
