/* mnist_convnet.c: the reference MNIST ConvNet (DESIGN.md), as a Sequential. */
#include <string.h>
#include "shardnet/layers.h"
#include "shardnet/model.h"

int sn_mnist_convnet_new(sn_model_t *m, int B, float p1, float p2)
{
    memset(m, 0, sizeof *m);
    strcpy(m->name, "mnist_convnet");
    m->num_classes = 10;
    sn_params_init(&m->params);
    sn_params_t *p = &m->params;
    sn_layer_t *net = sn_sequential_new("net", B);
    if (!net) return SN_ENOMEM;
    m->net = net;
    SN_TRY(sn_sequential_add(net, sn_conv2d_new(p, "conv1", 1, 28, 28, 16, 3, 1, 0, B)));
    SN_TRY(sn_sequential_add(net, sn_relu_new("relu1", 16 * 26 * 26, B)));
    SN_TRY(sn_sequential_add(net, sn_conv2d_new(p, "conv2", 16, 26, 26, 32, 3, 1, 0, B)));
    SN_TRY(sn_sequential_add(net, sn_relu_new("relu2", 32 * 24 * 24, B)));
    SN_TRY(sn_sequential_add(net, sn_maxpool2d_new("pool", 32, 24, 24, 2, 2, B)));
    SN_TRY(sn_sequential_add(net, sn_dropout_new("dropout1", 32 * 12 * 12, p1, B)));
    SN_TRY(sn_sequential_add(net, sn_flatten_new("flatten", 3, (int[]){32, 12, 12}, B)));
    SN_TRY(sn_sequential_add(net, sn_linear_new(p, "fc1", 4608, 64, B)));
    SN_TRY(sn_sequential_add(net, sn_relu_new("relu3", 64, B)));
    SN_TRY(sn_sequential_add(net, sn_dropout_new("dropout2", 64, p2, B)));
    SN_TRY(sn_sequential_add(net, sn_linear_new(p, "fc2", 64, 10, B)));
    SN_TRY(sn_sequential_add(net, sn_log_softmax_new("log_softmax", 10, B)));
    SN_TRY(sn_params_alloc(p));
    net->need_grad_input = 0;   /* nothing consumes the gradient of the images */
    return SN_OK;
}

void sn_model_free(sn_model_t *m)
{
    sn_layer_free(m->net);
    sn_params_free(&m->params);
    memset(m, 0, sizeof *m);
}
