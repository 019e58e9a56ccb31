/*
 * caption.c: the captioning model (include/shardnet/caption.h): the CNN encoder (body + head)
 * as two Sequentials, and the decoder Embedding -> LSTM -> Linear -> LogSoftMax run on
 * packed rows, as the reference runs its Linear on pack_padded_sequence's data: only
 * the sum(lengths) real positions go through the (large) V-wide output layer, in
 * row-major (b, t) order, and the NLL is taken over those packed rows.
 *
 * Data flow of one step (B rows, T = max length of the batch):
 *   feat = encoder(images) (B, E);  emb = embed(ids[:, :T]) (B, T, E)
 *   x[:, 0] = feat, x[:, t] = emb[:, t-1]  ->  LSTM (lengths)  ->  y (B, T, H)
 *   packed rows r = (b, t < len[b]):  logp = log_softmax(linear(y[b, t]))
 * The LSTM sees the rows by decreasing length (order, a stable sort), as
 * pack_padded_sequence arranges them: its step t then runs on the rows still active only.
 * Each row's values do not depend on that order; the packed rows, the loss and every
 * gradient handed back stay in the caller's (b, t) order.
 *   loss = sum_r -logp[r, ids[b, t]]
 * Backward walks the same path in reverse; the gradient of x[:, 0] goes to the encoder,
 * that of x[:, t] to emb[:, t-1] (emb[:, T-1] feeds nothing and gets zero).
 * Must not: allocate after the build, reorder the caller's rows, read caption ids at
 * padding positions (they are replaced by <pad> before the lookup).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/caption.h"
#include "shardnet/layers.h"
#include "shardnet/resnet.h"
#include "shardnet/sequence.h"

#define ENC_BLOCKS 4
static const int enc_channels[ENC_BLOCKS] = {32, 64, 128, 256};

static int add_layer(sn_layer_t *seq, sn_layer_t *l) { return sn_sequential_add(seq, l); }

/* The small CNN body: (3, S, S) -> (256) */
static int build_small_body(sn_caption_model_t *m, sn_layer_t *body, int B)
{
    sn_params_t *p = &m->params;
    int C = 3, S = m->crop;
    char name[SN_LAYER_NAME_MAX];
    for (int k = 0; k < ENC_BLOCKS; k++) {
        int OC = enc_channels[k], OS = (S + 2 - 3) / 2 + 1;   /* 3x3, stride 2, pad 1 */
        snprintf(name, sizeof name, "encoder.body.body.%d", 3 * k);
        SN_TRY(add_layer(body, sn_conv2d_new_opts(p, name, C, S, S, OC, 3, 2, 1, SN_CONV_BATCHED, B)));
        snprintf(name, sizeof name, "encoder.body.body.%d", 3 * k + 1);   /* + ReLU: PyTorch's .3k+1, .3k+2 */
        SN_TRY(add_layer(body, sn_batchnorm2d_relu_new(p, name, OC, OS, OS, 0.9f, B)));
        C = OC;
        S = OS;
    }
    SN_TRY(add_layer(body, sn_global_avgpool_new("encoder.body.body.12", C, S, S, B)));
    m->features = C;
    return SN_OK;
}

/* A frozen body runs in chunks of this many images: its activations are held for the
 * chunk only (a ResNet-152 at 224 needs about 0.5 GB of them per image). */
#define FROZEN_BODY_BATCH 4

static int build_encoder(sn_caption_model_t *m)
{
    sn_params_t *p = &m->params;
    int B = m->max_batch, depth = 0, rc = SN_OK;
    int body_batch = m->cfg.freeze_encoder && B > FROZEN_BODY_BATCH ? FROZEN_BODY_BATCH : B;
    p->frozen = m->cfg.freeze_encoder;   /* a frozen body's tensors are buffers */
    if (strcmp(m->cfg.encoder, "small") == 0) {
        if (!(m->body = sn_sequential_new("encoder.body", body_batch))) rc = SN_ENOMEM;
        else rc = build_small_body(m, m->body, body_batch);
    } else if (sscanf(m->cfg.encoder, "resnet%d", &depth) == 1) {   /* the depth is checked there */
        if (!(m->body = sn_resnet_body_new(p, "encoder.body", depth, m->crop, body_batch, &m->features)))
            rc = SN_FAIL(SN_EINVAL, "caption model: encoder '%s': %s", m->cfg.encoder, sn_error_message());
    } else {
        rc = SN_FAIL(SN_EINVAL, "caption model: unknown encoder '%s' (small, resnet18, resnet34, resnet50, "
                     "resnet101, resnet152)", m->cfg.encoder);
    }
    p->frozen = 0;
    SN_TRY(rc);
    m->body->need_grad_input = 0;   /* nothing consumes the gradient of the images */
    if (!(m->head = sn_sequential_new("encoder.head", B))) return SN_ENOMEM;
    SN_TRY(add_layer(m->head, sn_linear_new(p, "encoder.linear", m->features, m->embed, B)));
    SN_TRY(add_layer(m->head, sn_batchnorm1d_new(p, "encoder.bn", m->embed, 0.99f, B)));
    m->head->need_grad_input = !m->cfg.freeze_encoder;
    return SN_OK;
}

#define CAP_ALLOC(ptr, bytes, what) \
    do { if (!((ptr) = sn_alloc((bytes), (what)))) return SN_ENOMEM; } while (0)

static int build(sn_caption_model_t *m)
{
    sn_params_t *p = &m->params;
    int B = m->max_batch, T = m->max_len, E = m->embed, H = m->hidden, V = m->vocab;
    size_t rows = (size_t)B * T;
    SN_TRY(build_encoder(m));
    if (!(m->embedding = sn_embedding_new(p, "decoder.embed", V, E, T, B))) return SN_ENOMEM;
    if (!(m->lstm = sn_lstm_new(p, "decoder.lstm", E, H, m->layers, T, B))) return SN_ENOMEM;
    if (!(m->linear = sn_linear_new(p, "decoder.linear", H, V, (int)rows))) return SN_ENOMEM;
    if (!(m->log_softmax = sn_log_softmax_new("decoder.log_softmax", V, (int)rows))) return SN_ENOMEM;
    m->lstm->need_grad_input = 1;
    m->linear->need_grad_input = 1;
    SN_TRY(sn_params_alloc(p));
    CAP_ALLOC(m->ids, rows * sizeof(int32_t), "caption ids");
    CAP_ALLOC(m->target, rows * sizeof(int32_t), "packed targets");
    CAP_ALLOC(m->pack_row, rows * sizeof(int), "packed row index");
    CAP_ALLOC(m->len, (size_t)B * sizeof(int), "caption lengths");
    CAP_ALLOC(m->order, (size_t)B * sizeof(int), "LSTM row order");
    CAP_ALLOC(m->lstm_row, (size_t)B * sizeof(int), "LSTM row of each batch row");
    CAP_ALLOC(m->x, rows * E * sizeof(float), "LSTM input");
    CAP_ALLOC(m->hp, rows * H * sizeof(float), "packed LSTM output");
    CAP_ALLOC(m->dy, rows * H * sizeof(float), "LSTM output gradient");
    CAP_ALLOC(m->demb, rows * E * sizeof(float), "embedding gradient");
    CAP_ALLOC(m->dfeat, (size_t)B * E * sizeof(float), "image embedding gradient");
    CAP_ALLOC(m->h, (size_t)m->layers * B * H * sizeof(float), "decoding state h");
    CAP_ALLOC(m->c, (size_t)m->layers * B * H * sizeof(float), "decoding state c");
    CAP_ALLOC(m->pred, (size_t)B * sizeof(int32_t), "decoded tokens");
    CAP_ALLOC(m->done, (size_t)B * sizeof(int), "decoding flags");
    if (m->cfg.freeze_encoder) CAP_ALLOC(m->featbuf, (size_t)B * m->features * sizeof(float), "body features");
    return SN_OK;
}

int sn_caption_model_build(sn_caption_model_t *m, const sn_caption_config_t *cfg)
{
    memset(m, 0, sizeof *m);
    sn_params_init(&m->params);
    if (cfg->vocab < 4 || cfg->embed < 1 || cfg->hidden < 1 || cfg->layers < 1 || cfg->crop < 16 ||
        cfg->max_batch < 1 || cfg->max_len < 1)
        return SN_FAIL(SN_EINVAL, "caption model: vocab %d (>= 4), embed %d, hidden %d, layers %d, "
                       "crop %d (>= 16), max_batch %d, max_len %d", cfg->vocab, cfg->embed, cfg->hidden,
                       cfg->layers, cfg->crop, cfg->max_batch, cfg->max_len);
    if ((size_t)cfg->max_batch * cfg->max_len > (size_t)(1 << 30) / (size_t)cfg->vocab)
        return SN_FAIL(SN_EINVAL, "caption model: %d x %d tokens of vocabulary %d is too large", cfg->max_batch,
                       cfg->max_len, cfg->vocab);
    m->cfg = *cfg;
    if (!m->cfg.encoder[0]) snprintf(m->cfg.encoder, sizeof m->cfg.encoder, "small");
    m->vocab = cfg->vocab;
    m->embed = cfg->embed;
    m->hidden = cfg->hidden;
    m->layers = cfg->layers;
    m->crop = cfg->crop;
    m->max_batch = cfg->max_batch;
    m->max_len = cfg->max_len;
    int rc = build(m);
    if (rc) sn_caption_model_free(m);   /* keeps the message of the part that failed */
    return rc;
}

int sn_caption_model_new(sn_caption_model_t *m, int vocab, int embed, int hidden, int layers, int crop,
                         int max_batch, int max_len)
{
    sn_caption_config_t cfg = {.vocab = vocab, .embed = embed, .hidden = hidden, .layers = layers,
                               .crop = crop, .max_batch = max_batch, .max_len = max_len, .encoder = "small"};
    return sn_caption_model_build(m, &cfg);
}

void sn_caption_model_reset(sn_caption_model_t *m, uint64_t seed)
{
    sn_layer_reset(m->body, seed);
    sn_layer_reset(m->head, seed);
    sn_layer_reset(m->embedding, seed);
    sn_layer_reset(m->lstm, seed);
    sn_layer_reset(m->linear, seed);
}

void sn_caption_model_free(sn_caption_model_t *m)
{
    sn_layer_t *ls[] = {m->body, m->head, m->embedding, m->lstm, m->linear, m->log_softmax};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        if (ls[i]) sn_layer_free(ls[i]);
    sn_free(m->ids);
    sn_free(m->target);
    sn_free(m->pack_row);
    sn_free(m->len);
    sn_free(m->order);
    sn_free(m->lstm_row);
    sn_free(m->x);
    sn_free(m->hp);
    sn_free(m->dy);
    sn_free(m->demb);
    sn_free(m->dfeat);
    sn_free(m->h);
    sn_free(m->c);
    sn_free(m->pred);
    sn_free(m->done);
    sn_free(m->featbuf);
    sn_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

/* Body features of B images: the body's own output, or for a frozen body (evaluation
 * mode, in chunks of its max_batch) the feature buffer. */
static int run_body(sn_caption_model_t *m, const sn_ctx_t *ctx, const float *images, int B, const float **feats)
{
    if (!m->cfg.freeze_encoder) {
        SN_TRY(sn_layer_forward(m->body, ctx, images, B));
        *feats = m->body->output;
        return SN_OK;
    }
    sn_ctx_t ev = {.training = 0};
    int chunk = m->body->max_batch, F = m->features;
    size_t per = (size_t)3 * m->crop * m->crop;
    for (int i = 0; i < B; i += chunk) {
        int b = B - i < chunk ? B - i : chunk;
        SN_TRY(sn_layer_forward(m->body, &ev, images + (size_t)i * per, b));
        memcpy(m->featbuf + (size_t)i * F, m->body->output, (size_t)b * F * sizeof(float));
    }
    *feats = m->featbuf;
    return SN_OK;
}

/* order: batch rows by decreasing length, ties in batch order (an insertion sort: B is a
 * batch, and the rows come mostly unsorted anyway); len by LSTM row */
static void order_by_length(sn_caption_model_t *m, const int *lengths, int B)
{
    for (int b = 0; b < B; b++) {
        int r = b;
        for (; r > 0 && lengths[m->order[r - 1]] < lengths[b]; r--) m->order[r] = m->order[r - 1];
        m->order[r] = b;
    }
    for (int r = 0; r < B; r++) {
        m->lstm_row[m->order[r]] = r;
        m->len[r] = lengths[m->order[r]];
    }
}

/* images (B, 3, crop, crop), or body features (B, F) when images is NULL */
static int forward_loss(sn_caption_model_t *m, const sn_ctx_t *ctx, const float *images, const float *features,
                        const int32_t *captions, const int *lengths, int B, double *loss_sum, int64_t *tokens)
{
    m->fwd_valid = 0;
    if (B < 1 || B > m->max_batch)
        return SN_FAIL(SN_EINVAL, "caption model: batch %d outside 1..%d", B, m->max_batch);
    int T = 0, E = m->embed, H = m->hidden, V = m->vocab, L = m->max_len;
    for (int b = 0; b < B; b++) {
        if (lengths[b] < 1 || lengths[b] > L)
            return SN_FAIL(SN_EINVAL, "caption model: length %d of row %d outside 1..%d", lengths[b], b, L);
        for (int t = 0; t < lengths[b]; t++)
            if (captions[(size_t)b * L + t] < 0 || captions[(size_t)b * L + t] >= V)
                return SN_FAIL(SN_ERANGE, "caption model: token %d at (%d, %d) outside 0..%d",
                               (int)captions[(size_t)b * L + t], b, t, V - 1);
        if (lengths[b] > T) T = lengths[b];
    }
    m->ctx = ctx ? *ctx : (sn_ctx_t){.training = 1};
    m->ctx.lengths = NULL;
    m->images = images;
    m->B = B;
    m->T = T;
    order_by_length(m, lengths, B);
    /* ids (B, T): the real tokens, <pad> after them; packed targets in (b, t) order, each
     * pointing at its LSTM row */
    int n = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            int real = t < lengths[b];
            int32_t id = real ? captions[(size_t)b * L + t] : SN_CAPTION_PAD;
            m->ids[(size_t)b * T + t] = id;
            if (real) {
                m->target[n] = id;
                m->pack_row[n++] = m->lstm_row[b] * T + t;
            }
        }
    }
    m->ntok = n;

    if (images) SN_TRY(run_body(m, &m->ctx, images, B, &features));   /* frozen: evaluation mode */
    m->feats = features;
    SN_TRY(sn_layer_forward(m->head, &m->ctx, features, B));
    const float *feat = m->head->output;      /* (B, E) */
    SN_TRY(sn_embedding_forward_ids(m->embedding, m->ids, B, T));
    const float *emb = m->embedding->output;      /* (B, T, E) */
    for (int r = 0; r < B; r++) {
        int b = m->order[r];
        float *xr = m->x + (size_t)r * T * E;
        memcpy(xr, feat + (size_t)b * E, (size_t)E * sizeof(float));
        if (T > 1) memcpy(xr + E, emb + (size_t)b * T * E, (size_t)(T - 1) * E * sizeof(float));
    }
    SN_TRY(sn_lstm_forward_seq(m->lstm, m->x, B, T, m->len, NULL, NULL));
    const float *y = m->lstm->output;         /* (B, T, H) */
    for (int r = 0; r < n; r++)
        memcpy(m->hp + (size_t)r * H, y + (size_t)m->pack_row[r] * H, (size_t)H * sizeof(float));
    SN_TRY(sn_layer_forward(m->linear, &m->ctx, m->hp, n));
    SN_TRY(sn_layer_forward(m->log_softmax, &m->ctx, m->linear->output, n));
    /* the packed rows are one sequence of n real tokens: nothing left to mask */
    SN_TRY(sn_masked_nll_forward(loss_sum, NULL, m->log_softmax->output, m->target, NULL, -1, 1, n, V));
    *tokens = n;
    m->fwd_valid = 1;
    return SN_OK;
}

int sn_caption_forward_loss(sn_caption_model_t *m, const sn_ctx_t *ctx, const float *images,
                            const int32_t *captions, const int *lengths, int B, double *loss_sum,
                            int64_t *tokens)
{
    return forward_loss(m, ctx, images, NULL, captions, lengths, B, loss_sum, tokens);
}

int sn_caption_forward_loss_features(sn_caption_model_t *m, const sn_ctx_t *ctx, const float *features,
                                     const int32_t *captions, const int *lengths, int B, double *loss_sum,
                                     int64_t *tokens)
{
    return forward_loss(m, ctx, NULL, features, captions, lengths, B, loss_sum, tokens);
}

int sn_caption_body_features(sn_caption_model_t *m, const float *images, int B, float *out)
{
    m->fwd_valid = 0;
    if (B < 1 || B > m->max_batch)
        return SN_FAIL(SN_EINVAL, "caption model: batch %d outside 1..%d", B, m->max_batch);
    sn_ctx_t ev = {.training = 0};
    const float *f;
    SN_TRY(run_body(m, &ev, images, B, &f));
    memcpy(out, f, (size_t)B * m->features * sizeof(float));
    return SN_OK;
}

int sn_caption_backward(sn_caption_model_t *m, float scale)
{
    if (!m->fwd_valid) return SN_FAIL(SN_EINVAL, "caption model: backward without a forward before it");
    int B = m->B, T = m->T, n = m->ntok, E = m->embed, H = m->hidden, V = m->vocab;
    /* NLL and LogSoftMax backward in one pass, into LogSoftMax's own input gradient (the
     * gradient of the logits) */
    float *dlogits = m->log_softmax->grad_input;
    SN_TRY(sn_log_softmax_nll_backward(dlogits, m->log_softmax->output, m->target, n, V, scale));
    SN_TRY(sn_layer_backward(m->linear, &m->ctx, m->hp, dlogits, n));
    /* unpack: the gradient of the LSTM output, zero at padding */
    memset(m->dy, 0, (size_t)B * T * H * sizeof(float));
    const float *dh = m->linear->grad_input;
    for (int r = 0; r < n; r++)
        memcpy(m->dy + (size_t)m->pack_row[r] * H, dh + (size_t)r * H, (size_t)H * sizeof(float));
    SN_TRY(sn_lstm_backward_seq(m->lstm, m->dy, NULL, NULL, NULL, NULL));
    const float *dx = m->lstm->grad_input;    /* (B, T, E) */
    for (int b = 0; b < B; b++) {
        const float *dxb = dx + (size_t)m->lstm_row[b] * T * E;
        float *de = m->demb + (size_t)b * T * E;
        memcpy(m->dfeat + (size_t)b * E, dxb, (size_t)E * sizeof(float));
        if (T > 1) memcpy(de, dxb + E, (size_t)(T - 1) * E * sizeof(float));
        memset(de + (size_t)(T - 1) * E, 0, (size_t)E * sizeof(float));
    }
    SN_TRY(sn_embedding_backward_ids(m->embedding, m->ids, m->demb, B, T));
    SN_TRY(sn_layer_backward(m->head, &m->ctx, m->feats, m->dfeat, B));
    if (m->images && !m->cfg.freeze_encoder)
        SN_TRY(sn_layer_backward(m->body, &m->ctx, m->images, m->head->grad_input, B));
    return SN_OK;
}

static int greedy(sn_caption_model_t *m, const float *images, const float *features, int B, int max_tokens,
                  int32_t *out, int *out_len)
{
    m->fwd_valid = 0;
    if (B < 1 || B > m->max_batch)
        return SN_FAIL(SN_EINVAL, "caption model: batch %d outside 1..%d", B, m->max_batch);
    if (max_tokens < 1) return SN_FAIL(SN_EINVAL, "caption model: max_tokens %d < 1", max_tokens);
    int H = m->hidden, V = m->vocab;
    sn_ctx_t ev = {.training = 0};
    if (images) SN_TRY(run_body(m, &ev, images, B, &features));
    SN_TRY(sn_layer_forward(m->head, &ev, features, B));
    size_t state = (size_t)m->layers * B * H;
    memset(m->h, 0, state * sizeof(float));
    memset(m->c, 0, state * sizeof(float));
    memset(out, 0, (size_t)B * max_tokens * sizeof(int32_t));
    for (int b = 0; b < B; b++) {
        out_len[b] = 0;
        m->done[b] = 0;
    }
    const float *x = m->head->output;      /* t = 0: the image embedding */
    const float *htop = m->h + (size_t)(m->layers - 1) * B * H;
    for (int step = 0; step < max_tokens; step++) {
        SN_TRY(sn_lstm_step(m->lstm, x, m->h, m->c, B));
        SN_TRY(sn_layer_forward(m->linear, &ev, htop, B));
        int active = 0;
        for (int b = 0; b < B; b++) {
            const float *z = m->linear->output + (size_t)b * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (z[v] > z[best]) best = v;   /* the first maximum, as torch.argmax */
            m->pred[b] = best;
            if (m->done[b]) continue;
            if (best == SN_CAPTION_END) m->done[b] = 1;
            else if (best != SN_CAPTION_START && best != SN_CAPTION_PAD) out[(size_t)b * max_tokens + out_len[b]++] = best;
            active += !m->done[b];
        }
        if (!active) break;
        SN_TRY(sn_embedding_forward_ids(m->embedding, m->pred, B, 1));
        x = m->embedding->output;
    }
    return SN_OK;
}

int sn_caption_greedy(sn_caption_model_t *m, const float *images, int B, int max_tokens, int32_t *out,
                      int *out_len)
{
    return greedy(m, images, NULL, B, max_tokens, out, out_len);
}

int sn_caption_greedy_features(sn_caption_model_t *m, const float *features, int B, int max_tokens,
                               int32_t *out, int *out_len)
{
    return greedy(m, NULL, features, B, max_tokens, out, out_len);
}
