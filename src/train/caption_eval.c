/*
 * caption_eval.c: the captioning model's evaluation (caption_train.h): teacher-forced
 * loss and perplexity, greedy captions and corpus BLEU, over a set sharded by image
 * rows; plus the image transform and the configuration text shared with the trainer.
 *
 * BLEU compares token ids. References come from /caption_tokens (the caption's tokens
 * before <unk> mapping, as the reference scores them); each reference word is looked
 * up in the vocabulary, and a word outside it gets an id of its own >= V, so it can
 * never match a hypothesis token (which are all < V). That reproduces NLTK's scores on
 * the token strings exactly.
 * Must not: let ranks diverge in the number of collective calls (every rank runs the
 * same reductions, whatever its share of the set).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/caption_train.h"
#include "shardnet/dist.h"

static const float img_mean[3] = {0.485f, 0.456f, 0.406f};
static const float img_std[3] = {0.229f, 0.224f, 0.225f};

void sn_caption_image(float *dst, const uint8_t *src, int S, int crop, int y, int x, int flip)
{
    for (int c = 0; c < 3; c++) {
        const float a = 1.0f / (255.0f * img_std[c]), b = -img_mean[c] / img_std[c];
        for (int i = 0; i < crop; i++) {
            const uint8_t *row = src + ((size_t)c * S + y + i) * S + x;
            float *out = dst + ((size_t)c * crop + i) * crop;
            if (flip)
                for (int j = 0; j < crop; j++) out[j] = (float)row[crop - 1 - j] * a + b;
            else
                for (int j = 0; j < crop; j++) out[j] = (float)row[j] * a + b;
        }
    }
}

void sn_caption_config_format(const sn_caption_config_t *c, char *out, size_t n)
{
    snprintf(out, n, "encoder=%s embed=%d hidden=%d layers=%d crop=%d vocab=%d max_len=%d freeze_encoder=%d "
             "image_size=%d", c->encoder, c->embed, c->hidden, c->layers, c->crop, c->vocab, c->max_len,
             c->freeze_encoder, c->image_size);
}

int sn_caption_config_parse(const char *text, sn_caption_config_t *c)
{
    memset(c, 0, sizeof *c);
    if (!text) return SN_FAIL(SN_EFORMAT, "no model configuration (model_config attribute)");
    int n = sscanf(text, "encoder=%15s embed=%d hidden=%d layers=%d crop=%d vocab=%d max_len=%d freeze_encoder=%d "
                   "image_size=%d", c->encoder, &c->embed, &c->hidden, &c->layers, &c->crop, &c->vocab, &c->max_len,
                   &c->freeze_encoder, &c->image_size);
    if (n != 9) return SN_FAIL(SN_EFORMAT, "model configuration '%s' is not of the form 'encoder=... embed=N "
                               "hidden=N layers=N crop=N vocab=N max_len=N freeze_encoder=N image_size=N'", text);
    return SN_OK;
}

/* ---- a word -> id table for the references ------------------------------------------ */

typedef struct { char **key; int32_t *id; size_t cap; int32_t next; } dict_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The id of the word w[0..len), -1 if it is not in the table. */
static int32_t dict_find(const dict_t *d, const char *w, size_t len)
{
    char buf[256];
    if (len >= sizeof buf) len = sizeof buf - 1;   /* longer words only need to stay distinct from hypotheses */
    memcpy(buf, w, len);
    buf[len] = '\0';
    size_t i = hash_str(buf) & (d->cap - 1);
    while (d->key[i]) {
        if (strcmp(d->key[i], buf) == 0) return d->id[i];
        i = (i + 1) & (d->cap - 1);
    }
    return -1;
}

static int dict_put(dict_t *d, const char *w, int32_t id)
{
    size_t i = hash_str(w) & (d->cap - 1);
    while (d->key[i]) {
        if (strcmp(d->key[i], w) == 0) return SN_OK;   /* the first id wins */
        i = (i + 1) & (d->cap - 1);
    }
    if (!(d->key[i] = strdup(w))) return SN_FAIL(SN_ENOMEM, "reference word table");
    d->id[i] = id;
    return SN_OK;
}

static void dict_free(dict_t *d)
{
    if (d->key)
        for (size_t i = 0; i < d->cap; i++) free(d->key[i]);
    free(d->key);
    free(d->id);
}

/* Vocabulary words plus every reference word of the set. */
static int dict_build(dict_t *d, char *const *words, int V, const sn_coco_set_t *s)
{
    size_t n = (size_t)V + 1;
    for (int64_t c = 0; c < s->n_captions; c++)
        for (const char *p = s->refs[c]; *p; p++) n += *p == ' ';
    n += (size_t)s->n_captions;
    memset(d, 0, sizeof *d);
    for (d->cap = 64; d->cap < 2 * n; d->cap *= 2) {}
    d->key = calloc(d->cap, sizeof *d->key);
    d->id = calloc(d->cap, sizeof *d->id);
    if (!d->key || !d->id) return SN_FAIL(SN_ENOMEM, "reference word table of %zu words", n);
    for (int v = 0; v < V; v++) SN_TRY(dict_put(d, words[v], v));
    d->next = V;
    for (int64_t c = 0; c < s->n_captions; c++) {
        char buf[256];
        for (const char *p = s->refs[c]; *p;) {
            while (*p == ' ') p++;
            size_t len = strcspn(p, " ");
            if (!len) break;
            size_t k = len < sizeof buf ? len : sizeof buf - 1;
            memcpy(buf, p, k);
            buf[k] = '\0';
            if (dict_find(d, buf, k) < 0) SN_TRY(dict_put(d, buf, d->next++));
            p += len;
        }
    }
    return SN_OK;
}

/* ---- evaluation ------------------------------------------------------------------------ */

void sn_caption_eval_free(sn_caption_eval_t *e)
{
    free(e->hyp);
    free(e->hyp_len);
    e->hyp = NULL;
    e->hyp_len = NULL;
    e->n_hyp = 0;
}

/* BLEU stats of this rank's images: hyps from greedy decoding, refs from the set. */
static int bleu_local(const sn_coco_set_t *s, char *const *words, int V, const sn_caption_eval_t *e,
                      int max_tokens, sn_bleu_stats_t *st)
{
    dict_t d;
    int rc = dict_build(&d, words, V, s);
    int64_t *first = calloc((size_t)s->n_images + 1, sizeof *first);   /* captions grouped by image */
    int64_t *order = malloc((size_t)(s->n_captions ? s->n_captions : 1) * sizeof *order);
    int32_t *ids = malloc((size_t)(s->n_captions ? s->n_captions : 1) * 256 * sizeof *ids);
    int *lens = malloc((size_t)(s->n_captions ? s->n_captions : 1) * sizeof *lens);
    if (!rc && (!first || !order || !ids || !lens)) rc = SN_FAIL(SN_ENOMEM, "BLEU references");
    for (int64_t c = 0; !rc && c < s->n_captions; c++) first[s->image[c] + 1]++;
    for (int64_t i = 0; !rc && i < s->n_images; i++) first[i + 1] += first[i];
    if (!rc) {
        int64_t *pos = calloc((size_t)s->n_images + 1, sizeof *pos);
        if (!pos) rc = SN_FAIL(SN_ENOMEM, "BLEU references");
        for (int64_t c = 0; !rc && c < s->n_captions; c++) {
            int32_t img = s->image[c];
            order[first[img] + pos[img]++] = c;
        }
        free(pos);
    }
    for (int64_t c = 0; !rc && c < s->n_captions; c++) {   /* token ids of every reference */
        int32_t *out = ids + (size_t)c * 256;
        int n = 0;
        for (const char *p = s->refs[c]; *p && n < 256;) {
            while (*p == ' ') p++;
            size_t len = strcspn(p, " ");
            if (!len) break;
            out[n++] = dict_find(&d, p, len);
            p += len;
        }
        lens[c] = n;
    }
    for (int64_t i = 0; !rc && i < s->n_images; i++) {
        int nr = (int)(first[i + 1] - first[i]);
        if (nr == 0) continue;   /* an image without captions has nothing to be scored against */
        int rl[64];
        const int32_t *rp[64];
        if (nr > 64) nr = 64;
        for (int k = 0; k < nr; k++) {
            int64_t c = order[first[i] + k];
            rp[k] = ids + (size_t)c * 256;
            rl[k] = lens[c];
        }
        rc = sn_bleu_add(st, e->hyp + (size_t)i * max_tokens, e->hyp_len[i], rp, rl, nr);
    }
    free(first);
    free(order);
    free(ids);
    free(lens);
    dict_free(&d);
    return rc;
}

int sn_caption_evaluate(sn_caption_model_t *m, const sn_coco_set_t *s, char *const *words, int want_bleu,
                        int max_tokens, sn_caption_eval_t *out)
{
    memset(out, 0, sizeof *out);
    int B = m->max_batch, crop = m->crop, S = s->size, L = s->max_len, rc = SN_OK;
    if (crop > S) rc = SN_FAIL(SN_EINVAL, "crop %d is larger than the images (%d x %d)", crop, S, S);
    if (!rc && L > m->max_len) rc = SN_FAIL(SN_EINVAL, "captions of %d tokens, the model takes %d", L, m->max_len);
    if (!rc && want_bleu && !s->refs) rc = SN_FAIL(SN_EINVAL, "BLEU needs the set's reference tokens");
    size_t per = (size_t)3 * crop * crop;
    int F = m->features;
    int64_t nimg = s->n_images;
    float *x = rc ? NULL : sn_alloc((size_t)B * per * sizeof(float), "evaluation images");
    float *feat = rc ? NULL : sn_alloc((size_t)(nimg ? nimg : 1) * F * sizeof(float), "evaluation body features");
    float *fb = rc ? NULL : sn_alloc((size_t)B * F * sizeof(float), "evaluation feature batch");
    int ML = m->max_len;   /* the model's row stride */
    int32_t *caps = rc ? NULL : calloc((size_t)B * ML, sizeof *caps);
    int *lens = rc ? NULL : malloc((size_t)B * sizeof *lens);
    if (!rc && (!x || !feat || !fb || !caps || !lens)) rc = SN_FAIL(SN_ENOMEM, "evaluation buffers");
    rc = sn_dist_agree(rc);
    int o = (S - crop) / 2;
    double sums[1] = {0.0};
    int64_t counts[3] = {0, s->n_captions, nimg};
    sn_ctx_t ev = {.training = 0};
    /* The body in evaluation mode depends on the image only: run it once per image, not once
     * per caption (about five) and again for the greedy captions. */
    for (int64_t i = 0; !rc && i < nimg; i += B) {
        int b = (int)(nimg - i < B ? nimg - i : B);
        for (int k = 0; k < b; k++)
            sn_caption_image(x + (size_t)k * per, s->images + (size_t)(i + k) * 3 * S * S, S, crop, o, o, 0);
        rc = sn_caption_body_features(m, x, b, feat + (size_t)i * F);
    }
    for (int64_t i = 0; !rc && i < s->n_captions; i += B) {   /* teacher-forced loss */
        int b = (int)(s->n_captions - i < B ? s->n_captions - i : B);
        for (int k = 0; k < b; k++) {
            int64_t c = i + k;
            memcpy(fb + (size_t)k * F, feat + (size_t)s->image[c] * F, (size_t)F * sizeof(float));
            memcpy(caps + (size_t)k * ML, s->captions + (size_t)c * L, (size_t)L * sizeof *caps);
            lens[k] = s->lengths[c];
        }
        double l = 0.0;
        int64_t nt = 0;
        rc = sn_caption_forward_loss_features(m, &ev, fb, caps, lens, b, &l, &nt);
        sums[0] += l;
        counts[0] += nt;
    }
    if (!rc && want_bleu) {   /* greedy captions of every image */
        out->hyp = calloc((size_t)(nimg ? nimg : 1) * max_tokens, sizeof *out->hyp);
        out->hyp_len = calloc((size_t)(nimg ? nimg : 1), sizeof *out->hyp_len);
        out->n_hyp = nimg;
        if (!out->hyp || !out->hyp_len) rc = SN_FAIL(SN_ENOMEM, "greedy captions");
        for (int64_t i = 0; !rc && i < nimg; i += B) {
            int b = (int)(nimg - i < B ? nimg - i : B);
            rc = sn_caption_greedy_features(m, feat + (size_t)i * F, b, max_tokens, out->hyp + (size_t)i * max_tokens,
                                            out->hyp_len + i);
        }
    }
    sn_bleu_stats_t st;
    sn_bleu_stats_init(&st);
    if (!rc && want_bleu) rc = bleu_local(s, words, m->vocab, out, max_tokens, &st);
    sn_free(x);
    sn_free(feat);
    sn_free(fb);
    free(caps);
    free(lens);
    SN_TRY(sn_dist_agree(rc));
    SN_TRY(sn_dist_allreduce_sum_f64(sums, 1));
    SN_TRY(sn_dist_allreduce_sum_i64(counts, 3));
    if (want_bleu) SN_TRY(sn_dist_allreduce_sum_i64(st.c, SN_BLEU_NSTATS));
    out->tokens = counts[0];
    out->captions = counts[1];
    out->images = counts[2];
    out->loss = counts[0] ? sums[0] / (double)counts[0] : NAN;
    out->perplexity = exp(out->loss);
    for (int n = 1; want_bleu && n <= 4; n++) SN_TRY(sn_bleu_score(&st, n, &out->bleu[n - 1]));
    return SN_OK;
}

void sn_caption_fprint(FILE *f, char *const *words, const int32_t *ids, int n)
{
    for (int t = 0; t < n; t++) fprintf(f, "%s%s", t ? " " : "", words[ids[t]]);
}

void sn_caption_print_samples(FILE *f, const sn_coco_set_t *s, char *const *words, const sn_caption_eval_t *e,
                              int max_tokens, int n)
{
    for (int64_t i = 0; i < e->n_hyp && i < n; i++) {
        fprintf(f, "  image %lld: ", (long long)(s->image_first + i));
        sn_caption_fprint(f, words, e->hyp + (size_t)i * max_tokens, e->hyp_len[i]);
        for (int64_t c = 0; c < s->n_captions; c++)
            if (s->image[c] == i) {
                fprintf(f, "\n      reference: %s", s->refs[c]);
                break;
            }
        fputc('\n', f);
    }
    fflush(f);
}
