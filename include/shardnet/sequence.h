/*
 * sequence.h: the sequence and encoder layers of the captioning model: Embedding, LSTM
 * (full sequences over variable lengths, plus a single-step API for greedy decoding),
 * per-channel batch norm with affine parameters (NCHW and (B, n)), global average
 * pooling, a residual container, and the masked NLL over (B, T, V).
 *
 * Every constructor follows layers.h: parameters are registered in `params` under
 * PyTorch's names ("name.weight", "name.weight_ih_l0", ...), buffers are sized for
 * max_batch (and max_T) once, nothing is allocated inside forward/backward, and
 * parameter gradients are ADDED to the gradient arena. Sequence tensors are batch-first
 * (B, T, F). Sequence lengths reach protocol calls through sn_ctx_t.lengths.
 */
#ifndef SHARDNET_SEQUENCE_H
#define SHARDNET_SEQUENCE_H
#include <stdint.h>
#include "shardnet/layer.h"

/* ---- Embedding ---------------------------------------------------------------------
 * W (vocab, dim). Protocol input: one sample is T floats holding token ids that are
 * exact integers (0..vocab-1); output (T, dim). A non-integer or out-of-range id fails
 * with SN_ERANGE before anything is written. Ids are not differentiable: the protocol
 * backward writes a zero grad_input and accumulates dW (rows of repeated ids add up,
 * in token order, whatever the thread count). ctx->lengths is not needed: an id at a
 * padding position is looked up like any other, and its dy (zero when the LSTM after it
 * ignores padding) is added like any other, as PyTorch's Embedding does.
 * The typed entry points take int32 ids (B, T) and use the same buffers. */
sn_layer_t *sn_embedding_new(sn_params_t *params, const char *name, int vocab, int dim, int T,
                             int max_batch);
/* ids (B, T) -> l->output (B, T, dim); T <= the T the layer was built for. */
int sn_embedding_forward_ids(sn_layer_t *l, const int32_t *ids, int B, int T);
/* ids (B, T), dy (B, T, dim): dW[ids[b,t]] += dy[b,t]. */
int sn_embedding_backward_ids(sn_layer_t *l, const int32_t *ids, const float *dy, int B, int T);

/* ---- LSTM --------------------------------------------------------------------------
 * PyTorch's nn.LSTM(input_size, hidden_size, num_layers, batch_first=True): per layer k
 * weight_ih_lk (4H, F_k), weight_hh_lk (4H, H), bias_ih_lk (4H), bias_hh_lk (4H), gate
 * order i, f, g, o:  c' = f c + i g,  h' = o tanh(c').
 * Lengths: one per batch row, each in 1..T, in ANY order (none sorted here: a row simply
 * stops updating after its last step). Work is done for the rows up to the last one still
 * active at each step, so rows ordered by decreasing length (as pack_padded_sequence
 * orders them) cost their real steps only. Outputs at padding steps are
 * zero, the final state of a row is its state after its last real step, and padding
 * steps contribute nothing to any gradient: pack_padded_sequence(enforce_sorted=False)
 * + nn.LSTM + pad_packed_sequence.
 * Protocol: one sample is (T, input_size) -> (T, hidden_size) with T = max_T, lengths
 * from ctx->lengths (NULL: all T), zero initial states. */
sn_layer_t *sn_lstm_new(sn_params_t *params, const char *name, int input_size, int hidden_size,
                        int num_layers, int max_T, int max_batch);

/* x (B, T, F) -> l->output (B, T, H) (rows of T*H floats, zero at padding);
 * lengths (B) or NULL; h0, c0 (L, B, H) or NULL for zeros. T <= max_T. */
int sn_lstm_forward_seq(sn_layer_t *l, const float *x, int B, int T, const int *lengths,
                        const float *h0, const float *c0);
/* Backward of the last sn_lstm_forward_seq (same B, T, lengths, initial states).
 * dy (B, T, H) or NULL (zero); dh_n, dc_n (L, B, H) or NULL (zero): gradients of the final
 * states. Writes l->grad_input (B, T, F) when l->need_grad_input, dh0/dc0 (L, B, H) when
 * not NULL; accumulates every parameter gradient. */
int sn_lstm_backward_seq(sn_layer_t *l, const float *dy, const float *dh_n, const float *dc_n,
                         float *dh0, float *dc0);
/* Final states of the last forward: (L, B, H). */
const float *sn_lstm_h_n(const sn_layer_t *l);
const float *sn_lstm_c_n(const sn_layer_t *l);

/* One time step for greedy decoding (evaluation only, no backward): x (B, F); h, c
 * (L, B, H) hold the state and are updated in place; the top layer's new h is
 * h + (L-1)*B*H. Gives the numbers of sn_lstm_forward_seq step by step. */
int sn_lstm_step(sn_layer_t *l, const float *x, float *h, float *c, int B);

/* ---- Batch norm with affine parameters ----------------------------------------------
 * Per-channel normalisation over (B, C, HW) (BatchNorm2d) or (B, C) (BatchNorm1d), then
 * y = weight * xhat + bias. Training: batch statistics (biased variance to normalise,
 * unbiased for the moving variance), moving = alpha*moving + (1-alpha)*batch, i.e.
 * alpha = 1 - PyTorch's momentum. Evaluate: moving statistics. Parameters "weight",
 * "bias" (1 and 0 at reset), buffers "running_mean", "running_var" (0 and 1). */
sn_layer_t *sn_batchnorm2d_new(sn_params_t *params, const char *name, int C, int H, int W,
                               float alpha, int max_batch);
sn_layer_t *sn_batchnorm1d_new(sn_params_t *params, const char *name, int n, float alpha,
                               int max_batch);
/* BatchNorm2d followed by ReLU, as one layer: the numbers of the two layers (the same
 * parameters, under this layer's name) with one pass less over the activations in forward
 * and in backward. */
sn_layer_t *sn_batchnorm2d_relu_new(sn_params_t *params, const char *name, int C, int H, int W,
                                    float alpha, int max_batch);

/* ---- Encoder helpers ---------------------------------------------------------------- */
/* x (B, C, H, W) -> y (B, C): the mean over H*W (AdaptiveAvgPool2d(1) + flatten). */
sn_layer_t *sn_global_avgpool_new(const char *name, int C, int H, int W, int max_batch);

/* y = body(x) + shortcut(x), shortcut NULL for the identity. The residual owns both
 * layers; their output sizes must match (and equal the input size for the identity).
 * A ResNet block is Sequential(Residual(Sequential(conv, bn, relu, conv, bn), sc), ReLU). */
sn_layer_t *sn_residual_new(const char *name, sn_layer_t *body, sn_layer_t *shortcut, int max_batch);

/* ---- Masked NLL over sequences -------------------------------------------------------
 * logp (B, T, V) log-probabilities, target (B, T) ids. Position (b, t) is a real token
 * iff t < lengths[b] (lengths NULL: all T) and target[b,t] != ignore_index (pass a
 * negative ignore_index to ignore nothing). Real targets must lie in 0..V-1 (SN_ERANGE).
 * forward: *loss_sum = sum over real tokens of -logp[b,t,target], *count = their number
 * (so the mean is loss_sum/count, F.nll_loss(ignore_index=..) / cross-entropy on packed
 * targets). backward: dlogp = -scale at each real target, 0 elsewhere (scale = 1/count
 * for the mean). */
int sn_masked_nll_forward(double *loss_sum, int *count, const float *logp, const int *target,
                          const int *lengths, int ignore_index, int B, int T, int V);
int sn_masked_nll_backward(float *dlogp, const int *target, const int *lengths, int ignore_index,
                           int B, int T, int V, float scale);
/* Both backwards at once for n rows that all count (packed tokens): dx (n, V), the
 * gradient of scale * sum_r -logp[r, target[r]] with respect to the input of the
 * LogSoftMax that produced logp (n, V): scale * (exp(logp) - onehot(target)). The same
 * bits as sn_masked_nll_backward followed by the LogSoftMax backward, in one pass and
 * without the (n, V) one-hot gradient. */
int sn_log_softmax_nll_backward(float *dx, const float *logp, const int *target, int n, int V, float scale);

#endif
