/*
 * resnet.h: torchvision's ResNet-18/34/50/101/152 as an encoder body, i.e.
 * nn.Sequential(*list(torchvision.models.resnetN().children())[:-1]) followed by flatten:
 * every layer up to and including the global average pool, without fc.
 *
 *   index 0 conv1 7x7/2 pad 3 (no bias), 1 bn1, 2 relu, 3 maxpool 3/2 pad 1,
 *   4..7 layer1..layer4 of BasicBlock (18, 34) or Bottleneck (50, 101, 152; the stride on
 *   the 3x3 conv, "v1.5"), 8 avgpool (+ flatten)
 *
 * Parameter names are exactly that Sequential's state_dict names behind "<prefix>."
 * (num_batches_tracked is not kept), e.g. "encoder.body.0.weight",
 * "encoder.body.4.0.conv1.weight", "encoder.body.5.0.downsample.1.running_var", in the
 * state_dict's order, so a file written by data-prep/convert_torchvision.py loads with
 * sn_checkpoint_load_prefix. BatchNorm2d has eps 1e-5 and PyTorch's momentum 0.1.
 * sn_layer_reset gives torchvision's init: convs kaiming_normal_(fan_out, relu), batch
 * norm weight 1, bias 0 (drawn from the counter RNG, so not torch's numbers).
 */
#ifndef SHARDNET_RESNET_H
#define SHARDNET_RESNET_H
#include "shardnet/layer.h"
#include "shardnet/params.h"

/* Builds the body for depth in {18, 34, 50, 101, 152} on inputs x (B, 3, size, size),
 * output (B, F) with F = 512 (18, 34) or 2048 (50, 101, 152), stored in *features (may be
 * NULL). Registers the parameters in params (the caller runs sn_params_alloc, then
 * sn_layer_reset or a checkpoint load). prefix may be "" (names "0.weight", ...); it must
 * leave room for the longest names (at most 30 characters). Returns a Sequential, or NULL
 * with sn_error_message() set on bad arguments or allocation failure. The caller owns it
 * (sn_layer_free); set its need_grad_input to 0 when nothing needs the image gradient. */
sn_layer_t *sn_resnet_body_new(sn_params_t *params, const char *prefix, int depth, int size,
                               int max_batch, int *features);

/* One torchvision block named `name` (its parameters "name.conv1.weight", "name.bn1.weight",
 * ..., "name.downsample.0.weight" as in the state_dict): BasicBlock (bottleneck 0) or
 * Bottleneck (1, expansion 4, stride on the 3x3 conv) on x (B, C, size, size) ->
 * (B, planes * expansion, S', S') with S' = (size - 1) / stride + 1; the downsample
 * (1x1 conv with the stride + batch norm) exists iff stride != 1 or the channels change.
 * It is Sequential(Residual(body, downsample), ReLU). NULL with a message on failure. */
sn_layer_t *sn_resnet_block_new(sn_params_t *params, const char *name, int bottleneck, int C, int size,
                                int planes, int stride, int max_batch);

#endif
