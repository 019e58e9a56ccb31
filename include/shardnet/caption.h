/*
 * caption.h: the image-captioning model of DESIGN.md ("show and tell", the reference of
 * /work/shared/bench/torch_caption.py) as one shardnet model with one parameter arena.
 *
 *   encoder  4 x [Conv2d 3x3 stride 2 pad 1 -> BatchNorm2d -> ReLU] with 32, 64, 128, 256
 *            channels -> global average pool -> Linear(256, E) -> BatchNorm1d(E,
 *            momentum 0.01, i.e. alpha 0.99)                       ("small" encoder)
 *   decoder  Embedding(V, E) -> LSTM(E, H, layers, batch-first) -> Linear(H, V)
 *
 * Teacher forcing as the reference (torch.cat + pack_padded_sequence): a caption row
 * w_0 .. w_{L-1} (w_0 = <start>, w_{L-1} = <end>, L = its length) gives the LSTM input
 * [img, w_0, .., w_{L-2}] and the targets w_0 .. w_{L-1}: L predicted tokens per row.
 * The loss is the NLL of log-softmax over V at the real tokens only (cross-entropy on
 * the packed targets); rows need not be sorted by length (the model hands them to the LSTM
 * by decreasing length, and everything it returns is in the caller's order).
 *
 * Parameter names are PyTorch's state_dict names of the reference's two modules with
 * the prefixes "encoder." and "decoder.": encoder.body.body.<3k>.weight/bias (conv k),
 * encoder.body.body.<3k+1>.weight/bias/running_mean/running_var (its BatchNorm2d),
 * encoder.linear.*, encoder.bn.*, decoder.embed.weight, decoder.lstm.weight_ih_l0 ..,
 * decoder.linear.*. BatchNorm's num_batches_tracked is not kept (nothing reads it).
 * So a checkpoint's /params/<name> layout (checkpoint.h) holds a PyTorch state_dict.
 *
 * With a ResNet encoder the body's names are torchvision's: encoder.body.<i>... (the
 * children of the ResNet without fc, see resnet.h).
 *
 * Everything is allocated by sn_caption_model_new for max_batch rows of max_len tokens;
 * forward, backward and greedy decoding allocate nothing.
 */
#ifndef SHARDNET_CAPTION_H
#define SHARDNET_CAPTION_H
#include <stdint.h>
#include "shardnet/layer.h"
#include "shardnet/params.h"

#define SN_CAPTION_PAD   0
#define SN_CAPTION_START 1
#define SN_CAPTION_END   2
#define SN_CAPTION_UNK   3

/* Encoder architectures: the "small" CNN, or torchvision's ResNets (include/shardnet/resnet.h). */
#define SN_CAPTION_ENCODER_MAX 16

typedef struct sn_caption_config {
    int  vocab, embed, hidden, layers, crop, max_batch, max_len;
    char encoder[SN_CAPTION_ENCODER_MAX];   /* "small", "resnet18", "resnet34", "resnet50", ... */
    int  freeze_encoder;                   /* the body's tensors are buffers: only the head
                                              (Linear + BatchNorm1d) and decoder train */
    int  image_size;                       /* S of the training images (recorded, not used
                                              by the model: `shardnet caption` resizes to it) */
} sn_caption_config_t;

typedef struct sn_caption_model {
    sn_caption_config_t cfg;
    int          vocab, embed, hidden, layers, crop, max_batch, max_len;
    int          features;     /* F: the body's output per image */
    sn_params_t  params;
    sn_layer_t  *body;         /* Sequential (3, crop, crop) -> (F); frozen: forward-only, built
                                  for chunks of a few images */
    sn_layer_t  *head;         /* Sequential Linear(F, E) -> BatchNorm1d(E): the image embedding */
    sn_layer_t  *embedding;    /* decoder.embed, (max_batch, max_len) ids */
    sn_layer_t  *lstm;         /* decoder.lstm */
    sn_layer_t  *linear;       /* decoder.linear over packed rows (max_batch * max_len) */
    sn_layer_t  *log_softmax;  /* over V, packed rows */
    /* work buffers (build time) */
    int32_t     *ids;          /* (max_batch, max_len) caption ids of the last forward, pad = 0 */
    int32_t     *target;       /* (max_batch * max_len) packed targets */
    int         *pack_row;     /* (max_batch * max_len) packed row -> b * T + t */
    int         *len;          /* (max_batch) lengths of the last forward, by LSTM row */
    int         *order;        /* (max_batch) LSTM row r holds batch row order[r]: by decreasing
                                  length, so the LSTM's per-step products cover the real tokens */
    int         *lstm_row;     /* (max_batch) its inverse: batch row b is LSTM row lstm_row[b] */
    float       *x;            /* (max_batch, max_len, E) LSTM input */
    float       *hp;           /* (max_batch * max_len, H) packed LSTM outputs / their gradient */
    float       *dy;           /* (max_batch, max_len, H) LSTM output gradient */
    float       *demb;         /* (max_batch, max_len, E) embedding output gradient */
    float       *dfeat;        /* (max_batch, E) gradient of the image embedding */
    float       *h, *c;        /* (layers, max_batch, H) greedy decoding state */
    int32_t     *pred;         /* (max_batch) greedy decoding tokens */
    int         *done;         /* (max_batch) */
    float       *featbuf;      /* frozen encoder: (max_batch, F) body features, computed in chunks */
    /* the last forward, for backward */
    const float *images;       /* NULL when it started from body features */
    const float *feats;        /* (B, F) the head's input */
    sn_ctx_t     ctx;
    int          B, T, ntok, fwd_valid;
} sn_caption_model_t;

/* Builds the model for images (B, 3, crop, crop) and captions of max_len tokens (the
 * padded length L of coco_<split>.h5 /captions, <start> and <end> included). Reference
 * sizes: embed 256, hidden 512, layers 1. Parameters are zero until
 * sn_caption_model_reset (or a checkpoint load). */
int  sn_caption_model_build(sn_caption_model_t *m, const sn_caption_config_t *cfg);
/* The "small" encoder, not frozen. */
int  sn_caption_model_new(sn_caption_model_t *m, int vocab, int embed, int hidden, int layers, int crop,
                          int max_batch, int max_len);
/* PyTorch's default initialisation, from the counter-based RNG keyed by seed. */
void sn_caption_model_reset(sn_caption_model_t *m, uint64_t seed);
void sn_caption_model_free(sn_caption_model_t *m);

/* Forward of B <= max_batch image-caption pairs and the loss. ctx->training selects batch
 * statistics (and updates the BatchNorm moving statistics) or evaluation; ctx may be NULL
 * (training). images (B, 3, crop, crop) normalised, captions (B, max_len) padded rows,
 * lengths (B) in 1..max_len, any order. *loss_sum = sum over the real tokens of -log p,
 * *tokens = their number (sum of lengths). images and captions must stay unchanged until
 * the backward of this forward. */
int sn_caption_forward_loss(sn_caption_model_t *m, const sn_ctx_t *ctx, const float *images,
                            const int32_t *captions, const int *lengths, int B, double *loss_sum,
                            int64_t *tokens);
/* The same from body features (B, F) instead of images (a frozen encoder's cached
 * features): the body is not run, and backward stops at the head. */
int sn_caption_forward_loss_features(sn_caption_model_t *m, const sn_ctx_t *ctx, const float *features,
                                     const int32_t *captions, const int *lengths, int B, double *loss_sum,
                                     int64_t *tokens);
/* Body features (B, F) of images in evaluation mode (moving statistics), into out. */
int sn_caption_body_features(sn_caption_model_t *m, const float *images, int B, float *out);
/* Backward of the last forward: ADDS the gradient of scale * loss_sum to every parameter
 * gradient (scale = 1 / global token count gives the mean over the global batch). */
int sn_caption_backward(sn_caption_model_t *m, float scale);

/* Greedy decoding in evaluation mode (moving statistics), max_tokens steps at most (the
 * reference uses 20): t=0 feeds the image embedding, then each step feeds the embedding
 * of the previous argmax. A row's caption is its generated tokens up to (excluding)
 * <end>, with <start> and <pad> dropped, as the reference's ids_to_tokens; out
 * (B, max_tokens) holds it left-aligned, padded with 0, out_len (B) its length.
 * Overwrites the buffers of the last forward: a backward must follow its forward. */
int sn_caption_greedy(sn_caption_model_t *m, const float *images, int B, int max_tokens, int32_t *out,
                      int *out_len);
/* The same from body features (B, F). */
int sn_caption_greedy_features(sn_caption_model_t *m, const float *features, int B, int max_tokens,
                               int32_t *out, int *out_len);

#endif
