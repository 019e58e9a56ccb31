/*
 * loss.h: criteria. A criterion turns (B, C) predictions and targets into a scalar loss
 * (accumulated in double) and writes the gradient of `scale * sum_i loss_i` w.r.t. the
 * input. scale = 1/B gives PyTorch's mean reduction; the trainer passes 1/global_batch
 * so that the allreduced sum is the gradient of the mean loss over the global batch.
 *
 * Targets are class indices (int, 0..C-1) or one-hot rows (float, B x C).
 */
#ifndef SHARDNET_LOSS_H
#define SHARDNET_LOSS_H

#define SN_NLL_UNSTABLE_EPS 1e-15f

/* NLLCriterion: input log-probabilities. Returns sum_i -logp[i, t_i] in *loss_sum. */
int sn_nll_forward(double *loss_sum, const float *logp, const int *target, int B, int C);
int sn_nll_backward(float *dlogp, const int *target, int B, int C, float scale);
int sn_nll_onehot_forward(double *loss_sum, const float *logp, const float *onehot, int B, int C);
int sn_nll_onehot_backward(float *dlogp, const float *onehot, int B, int C, float scale);

/* NLLCriterionUnstable: input probabilities, clipped to [EPS, 1-EPS]; -log p[i, t_i]. */
int sn_nll_unstable_forward(double *loss_sum, const float *p, const int *target, int B, int C);
int sn_nll_unstable_backward(float *dp, const float *p, const int *target, int B, int C, float scale);
int sn_nll_unstable_onehot_forward(double *loss_sum, const float *p, const float *onehot, int B, int C);
int sn_nll_unstable_onehot_backward(float *dp, const float *p, const float *onehot, int B, int C, float scale);

#endif
