/*
 * caption_cmd.c: the captioning commands of `shardnet`:
 *   shardnet train --model caption ...   data-parallel training (caption_train.h)
 *   shardnet eval --model caption ...    loss, perplexity, BLEU-1..4 on a split
 *   shardnet caption ...                 greedy captions of image files
 * Each parses its own options (--help on each), starts MPI, and reports a library error
 * once, with a non-zero exit on every rank.
 * Must not: print from ranks other than 0 (except the error path of sn_dist_fail).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/caption_train.h"
#include "shardnet/checkpoint.h"
#include "shardnet/data.h"
#include "shardnet/dist.h"
#include "shardnet/error.h"
#include "shardnet/train.h"
#include "args.h"
#include "caption_cmd.h"
#include "image.h"

#define EXIT_STOPPED 4

static void usage_train(FILE *f)
{
    fprintf(f,
        "usage: [mpirun -np P] shardnet train --model caption --data coco_train.h5 [options]\n"
        "\n"
        "Trains the captioning model (CNN encoder -> Linear -> BatchNorm1d -> LSTM decoder, teacher\n"
        "forcing) on files of sn-pack, data-parallel: each rank reads its shard of the images and\n"
        "their captions; gradients, token counts and BatchNorm statistics are summed across ranks,\n"
        "so P ranks x batch/P train like 1 rank x batch. The loss is the mean NLL over the real\n"
        "(unpadded) tokens of the global batch.\n"
        "\n"
        "data:\n"
        "  --data FILE          training file (repeat it to train on several: same vocabulary)\n"
        "  --val FILE           validation file: loss, perplexity and BLEU after every epoch\n"
        "  --train-limit N      use the first N training images                       [all]\n"
        "  --val-limit N        evaluate on the first N validation images             [all]\n"
        "model:\n"
        "  --encoder NAME       small, resnet18, resnet34, resnet50, resnet101, resnet152 [small]\n"
        "  --encoder-weights F  encoder body tensors (encoder.body.*) from F, e.g. written by\n"
        "                       data-prep/convert_torchvision.py from a torchvision state_dict\n"
        "  --freeze-encoder     train only the encoder's Linear + BatchNorm1d and the decoder; the\n"
        "                       body runs once per image (evaluation mode, centre crop) and its\n"
        "                       features are cached, so later epochs skip it\n"
        "  --crop N             random crop of the training images (centre crop to evaluate) [224]\n"
        "  --embed N            embedding size E                                      [256]\n"
        "  --hidden N           LSTM hidden size H                                    [512]\n"
        "  --layers N           LSTM layers                                           [1]\n"
        "  --init FILE          start from the parameters of a checkpoint\n"
        "optimisation:\n"
        "  --epochs N           epochs                                                [1]\n"
        "  --batch N            global batch of caption-image pairs                   [32]\n"
        "  --optim NAME         adadelta (torch.optim.Adadelta) or adam (torch.optim.Adam,\n"
        "                       betas 0.9 0.999)                                      [adadelta]\n"
        "  --lr X  --rho X  --eps X   learning rate [1.0; adam 1e-3], Adadelta rho [0.9], eps\n"
        "                       [1e-6; adam 1e-8]\n"
        "  --seed N             seed of initialisation, shuffles, crops and flips     [0]\n"
        "  --max-steps N        stop after N optimizer steps                          [none]\n"
        "  --no-shuffle         captions in file order\n"
        "  --global-shuffle     every rank loads the whole set and takes its slice of one global\n"
        "                       permutation: results do not depend on the number of ranks\n"
        "  --no-flip            no random horizontal flips\n"
        "evaluation:\n"
        "  --no-bleu            validation loss only (no greedy decoding)\n"
        "  --samples N          greedy captions printed after the last epoch          [5]\n"
        "parallelism, checkpoints, output: as `shardnet train --help` (MNIST):\n"
        "  --threads N  --checkpoint FILE  --checkpoint-every N  --resume FILE  --stall-timeout S\n"
        "  --save FILE  --metrics FILE  --loss-log FILE  --check-every N  --progress MODE\n"
        "\n"
        "exit status: 0 success, 1 error, 2 bad usage, 4 stopped by a signal (checkpoint written)\n");
}

static void usage_eval(FILE *f)
{
    fprintf(f,
        "usage: [mpirun -np P] shardnet eval --model caption --checkpoint FILE --data coco_val.h5\n"
        "                                    [--limit N] [--samples N] [--html FILE] [--threads N]\n"
        "\n"
        "Evaluates a captioning checkpoint on a file of sn-pack (images sharded over the ranks):\n"
        "the teacher-forced loss and perplexity over every caption, then greedy captions (up to\n"
        "--max-tokens, stopping at <end>) of every image and corpus BLEU-1..4 against all of its\n"
        "reference captions, as nltk.translate.bleu_score.corpus_bleu computes it on the tokens.\n"
        "\n"
        "  --checkpoint FILE    checkpoint of `shardnet train --model caption`         [required]\n"
        "  --data FILE          evaluation file                                       [required]\n"
        "  --limit N            the first N images                                    [all]\n"
        "  --max-tokens N       greedy decoding length                                [20]\n"
        "  --samples N          print N captions beside a reference                   [10]\n"
        "  --html FILE          also write a self-contained HTML page of the first --samples\n"
        "                       images with their generated and reference captions\n"
        "  --out FILE           write every image's caption as a line 'ROW<TAB>generated<TAB>ref1<TAB>\n"
        "                       ref2...' (ROW = image row of the file; tokens separated by spaces)\n"
        "  --threads N          OpenMP threads per rank\n");
}

static void usage_caption(FILE *f)
{
    fprintf(f,
        "usage: shardnet caption --checkpoint FILE [--html FILE] [--max-tokens N] IMAGE...\n"
        "\n"
        "Prints one greedy caption per image (JPEG or PNG): the image is decoded and resized as\n"
        "sn-pack does (Lanczos to the training size), centre-cropped, normalised, and the\n"
        "decoder emits up to --max-tokens words, stopping at <end>. Lines are 'IMAGE<TAB>caption'.\n"
        "\n"
        "  --checkpoint FILE    checkpoint of `shardnet train --model caption`         [required]\n"
        "  --image FILE         an image (the same as a positional IMAGE; repeatable)\n"
        "  --max-tokens N       greedy decoding length                                [20]\n"
        "  --html FILE          also write a self-contained HTML page of the images and captions\n"
        "  --threads N          OpenMP threads\n");
}

enum {
    O_MODEL = 256, O_DATA, O_VAL, O_TRAIN_LIMIT, O_VAL_LIMIT, O_ENCODER, O_ENC_WEIGHTS, O_FREEZE, O_CROP, O_EMBED,
    O_HIDDEN, O_LAYERS, O_INIT, O_EPOCHS, O_BATCH, O_LR, O_RHO, O_EPS, O_SEED, O_MAX_STEPS, O_NO_SHUFFLE,
    O_GLOBAL_SHUFFLE, O_NO_FLIP, O_NO_BLEU, O_SAMPLES, O_THREADS, O_CHECKPOINT, O_CKPT_EVERY, O_RESUME, O_STALL,
    O_SAVE, O_METRICS, O_LOSS_LOG, O_CHECK_EVERY, O_PROGRESS, O_HELP, O_LIMIT, O_MAX_TOKENS, O_HTML, O_IMAGE, O_OUT, O_OPTIM
};

static const struct option opts[] = {
    {"model", required_argument, 0, O_MODEL}, {"data", required_argument, 0, O_DATA},
    {"val", required_argument, 0, O_VAL}, {"train-limit", required_argument, 0, O_TRAIN_LIMIT},
    {"val-limit", required_argument, 0, O_VAL_LIMIT}, {"encoder", required_argument, 0, O_ENCODER},
    {"encoder-weights", required_argument, 0, O_ENC_WEIGHTS}, {"freeze-encoder", no_argument, 0, O_FREEZE},
    {"crop", required_argument, 0, O_CROP}, {"embed", required_argument, 0, O_EMBED},
    {"hidden", required_argument, 0, O_HIDDEN}, {"layers", required_argument, 0, O_LAYERS},
    {"init", required_argument, 0, O_INIT}, {"epochs", required_argument, 0, O_EPOCHS},
    {"batch", required_argument, 0, O_BATCH}, {"lr", required_argument, 0, O_LR},
    {"rho", required_argument, 0, O_RHO}, {"eps", required_argument, 0, O_EPS},
    {"seed", required_argument, 0, O_SEED}, {"max-steps", required_argument, 0, O_MAX_STEPS},
    {"no-shuffle", no_argument, 0, O_NO_SHUFFLE}, {"global-shuffle", no_argument, 0, O_GLOBAL_SHUFFLE},
    {"no-flip", no_argument, 0, O_NO_FLIP}, {"no-bleu", no_argument, 0, O_NO_BLEU},
    {"samples", required_argument, 0, O_SAMPLES}, {"threads", required_argument, 0, O_THREADS},
    {"checkpoint", required_argument, 0, O_CHECKPOINT}, {"checkpoint-every", required_argument, 0, O_CKPT_EVERY},
    {"resume", required_argument, 0, O_RESUME}, {"stall-timeout", required_argument, 0, O_STALL},
    {"save", required_argument, 0, O_SAVE}, {"metrics", required_argument, 0, O_METRICS},
    {"loss-log", required_argument, 0, O_LOSS_LOG}, {"check-every", required_argument, 0, O_CHECK_EVERY},
    {"progress", required_argument, 0, O_PROGRESS}, {"help", no_argument, 0, O_HELP},
    {"limit", required_argument, 0, O_LIMIT}, {"max-tokens", required_argument, 0, O_MAX_TOKENS},
    {"html", required_argument, 0, O_HTML}, {"image", required_argument, 0, O_IMAGE},
    {"out", required_argument, 0, O_OUT}, {"optim", required_argument, 0, O_OPTIM}, {0, 0, 0, 0}};

typedef struct {
    sn_caption_train_config_t t;
    const char *checkpoint, *html, *out;
    const char **images;
    int n_images;
    int64_t limit;
    int samples_set, lr_set, eps_set;
} args_t;

/* Which options each command takes (others are refused with a message). */
static int allowed(const char *cmd, int o)
{
    static const int eval_ok[] = {O_MODEL, O_DATA, O_LIMIT, O_MAX_TOKENS, O_SAMPLES, O_HTML, O_THREADS,
                                  O_CHECKPOINT, O_HELP, O_BATCH, O_OUT, 0};
    static const int caption_ok[] = {O_CHECKPOINT, O_HTML, O_MAX_TOKENS, O_THREADS, O_IMAGE, O_HELP, 0};
    const int *ok = strcmp(cmd, "eval") == 0 ? eval_ok : strcmp(cmd, "caption") == 0 ? caption_ok : NULL;
    if (!ok) return o != O_LIMIT && o != O_MAX_TOKENS && o != O_HTML && o != O_IMAGE && o != O_OUT;
    for (; *ok; ok++)
        if (*ok == o) return 1;
    return 0;
}

/* 0, 1 for --help, -1 on bad usage. */
static int parse(const char *cmd, int argc, char **argv, args_t *a)
{
    long v;
    double d;
    int o, idx;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        if (o != '?' && o != 'h' && !allowed(cmd, o)) {
            fprintf(stderr, "shardnet: %s --model caption does not take --%s\n", cmd, opts[idx].name);
            return -1;
        }
        sn_caption_train_config_t *c = &a->t;
        switch (o) {
        case O_MODEL:
            if (strcmp(optarg, "caption") != 0) {
                fprintf(stderr, "shardnet: --model expects mnist or caption, got '%s'\n", optarg);
                return -1;
            }
            break;
        case O_DATA:
            if (c->n_data == SN_CAPTION_MAX_DATA) {
                fprintf(stderr, "shardnet: at most %d --data files\n", SN_CAPTION_MAX_DATA);
                return -1;
            }
            c->data[c->n_data++] = optarg;
            break;
        case O_VAL: c->val = optarg; break;
        case O_TRAIN_LIMIT: if (sn_cli_parse_long("--train-limit", optarg, 1, 1L << 40, &v)) return -1; c->train_limit = v; break;
        case O_VAL_LIMIT: if (sn_cli_parse_long("--val-limit", optarg, 1, 1L << 40, &v)) return -1; c->val_limit = v; break;
        case O_LIMIT: if (sn_cli_parse_long("--limit", optarg, 1, 1L << 40, &v)) return -1; a->limit = v; break;
        case O_ENCODER:
            if (strlen(optarg) >= sizeof c->model.encoder) {
                fprintf(stderr, "shardnet: --encoder '%s': unknown encoder\n", optarg);
                return -1;
            }
            snprintf(c->model.encoder, sizeof c->model.encoder, "%s", optarg);
            break;
        case O_ENC_WEIGHTS: c->encoder_weights = optarg; break;
        case O_FREEZE: c->model.freeze_encoder = 1; break;
        case O_CROP: if (sn_cli_parse_long("--crop", optarg, 16, 4096, &v)) return -1; c->model.crop = (int)v; break;
        case O_EMBED: if (sn_cli_parse_long("--embed", optarg, 1, 1 << 16, &v)) return -1; c->model.embed = (int)v; break;
        case O_HIDDEN: if (sn_cli_parse_long("--hidden", optarg, 1, 1 << 16, &v)) return -1; c->model.hidden = (int)v; break;
        case O_LAYERS: if (sn_cli_parse_long("--layers", optarg, 1, 16, &v)) return -1; c->model.layers = (int)v; break;
        case O_INIT: c->init = optarg; break;
        case O_EPOCHS: if (sn_cli_parse_long("--epochs", optarg, 1, 100000, &v)) return -1; c->epochs = (int)v; break;
        case O_BATCH: if (sn_cli_parse_long("--batch", optarg, 1, 1 << 16, &v)) return -1; c->batch = (int)v; break;
        case O_LR: if (sn_cli_parse_double("--lr", optarg, 0, 1e6, &d)) return -1; c->lr = (float)d; a->lr_set = 1; break;
        case O_OPTIM:
            if (strcmp(optarg, "adam") == 0) c->adam = 1;
            else if (strcmp(optarg, "adadelta") == 0) c->adam = 0;
            else { fprintf(stderr, "shardnet: --optim expects adadelta or adam, got '%s'\n", optarg); return -1; }
            break;
        case O_RHO: if (sn_cli_parse_double("--rho", optarg, 0, 1, &d)) return -1; c->rho = (float)d; break;
        case O_EPS: if (sn_cli_parse_double("--eps", optarg, 0, 1, &d)) return -1; c->eps = (float)d; a->eps_set = 1; break;
        case O_SEED: if (sn_cli_parse_long("--seed", optarg, 0, 1L << 62, &v)) return -1; c->seed = (uint64_t)v; break;
        case O_MAX_STEPS: if (sn_cli_parse_long("--max-steps", optarg, 1, 1L << 50, &v)) return -1; c->max_steps = v; break;
        case O_NO_SHUFFLE: c->shuffle = 0; break;
        case O_GLOBAL_SHUFFLE: c->global_shuffle = 1; break;
        case O_NO_FLIP: c->flip = 0; break;
        case O_NO_BLEU: c->bleu = 0; break;
        case O_SAMPLES: if (sn_cli_parse_long("--samples", optarg, 0, 1 << 20, &v)) return -1; c->samples = (int)v; a->samples_set = 1; break;
        case O_MAX_TOKENS: if (sn_cli_parse_long("--max-tokens", optarg, 1, 1000, &v)) return -1; c->max_tokens = (int)v; break;
        case O_THREADS: if (sn_cli_parse_long("--threads", optarg, 1, 1024, &v)) return -1; c->threads = (int)v; break;
        case O_CHECKPOINT: a->checkpoint = optarg; c->checkpoint = optarg; break;
        case O_CKPT_EVERY: if (sn_cli_parse_long("--checkpoint-every", optarg, 0, 1L << 50, &v)) return -1; c->checkpoint_every = v; break;
        case O_RESUME: c->resume = optarg; break;
        case O_STALL: if (sn_cli_parse_double("--stall-timeout", optarg, 0, 1e9, &d)) return -1; c->stall_timeout = d; break;
        case O_SAVE: c->save = optarg; break;
        case O_METRICS: c->metrics = optarg; break;
        case O_LOSS_LOG: c->loss_log = optarg; break;
        case O_CHECK_EVERY: if (sn_cli_parse_long("--check-every", optarg, 0, 1L << 40, &v)) return -1; c->check_every = (int)v; break;
        case O_PROGRESS: if ((c->progress = sn_cli_parse_progress(optarg)) < 0) return -1; break;
        case O_HTML: a->html = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_IMAGE: a->images[a->n_images++] = optarg; break;
        case 'h': case O_HELP: return 1;
        default: return -1;
        }
    }
    if (a->t.adam && !a->lr_set) a->t.lr = 1e-3f;
    if (a->t.adam && !a->eps_set) a->t.eps = 1e-8f;
    if (strcmp(cmd, "caption") == 0) {
        for (; optind < argc; optind++) a->images[a->n_images++] = argv[optind];
        if (!a->checkpoint) { fprintf(stderr, "shardnet: caption needs --checkpoint FILE\n"); return -1; }
        if (!a->n_images) { fprintf(stderr, "shardnet: caption needs at least one IMAGE\n"); return -1; }
        return 0;
    }
    if (optind != argc) {
        fprintf(stderr, "shardnet: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!a->t.n_data) {
        fprintf(stderr, "shardnet: --data FILE is required\n");
        return -1;
    }
    if (strcmp(cmd, "eval") == 0 && !a->checkpoint) {
        fprintf(stderr, "shardnet: eval needs --checkpoint FILE\n");
        return -1;
    }
    return 0;
}

/* Builds the model a checkpoint describes (max_batch rows, captions of at least max_len
 * tokens) and loads its parameters on every rank; *words gets its vocabulary. */
static int load_model(const char *path, int max_batch, int max_len, sn_caption_model_t *m, char ***words)
{
    sn_checkpoint_info_t info;
    sn_caption_config_t cfg;
    *words = NULL;
    int rc = sn_checkpoint_peek(path, &info);
    if (!rc && strcmp(info.model, "caption") != 0)
        rc = SN_FAIL(SN_EINVAL, "%s: a checkpoint of model '%s', not of a captioning model", path, info.model);
    if (!rc && (rc = sn_caption_config_parse(info.config, &cfg)))
        rc = SN_FAIL(rc, "%s: %s", path, sn_error_message());
    char **w = NULL;
    int V = 0;
    if (!rc && !info.vocab) rc = SN_FAIL(SN_EFORMAT, "%s: no vocabulary (/vocab_text)", path);
    if (!rc) {
        for (const char *p = info.vocab; *p; p++) V += *p == '\n';
        if (V != cfg.vocab) rc = SN_FAIL(SN_EFORMAT, "%s: /vocab_text has %d tokens, the model %d", path, V, cfg.vocab);
    }
    if (!rc && !(w = calloc((size_t)V, sizeof *w))) rc = SN_FAIL(SN_ENOMEM, "vocabulary");
    const char *p = info.vocab;
    for (int i = 0; !rc && i < V; i++) {
        const char *e = strchr(p, '\n');
        if (!(w[i] = strndup(p, (size_t)(e - p)))) rc = SN_FAIL(SN_ENOMEM, "vocabulary");
        p = e + 1;
    }
    sn_checkpoint_info_free(&info);
    if (!rc) {
        cfg.max_batch = max_batch;
        if (max_len > cfg.max_len) cfg.max_len = max_len;
        rc = sn_caption_model_build(m, &cfg);
    }
    if (!rc) rc = sn_checkpoint_load(path, &m->params, NULL, NULL);
    if (rc) {
        sn_coco_free_words(w, V);
        return rc;
    }
    *words = w;
    return SN_OK;
}

/* Every rank's captions into one file, in image order: the ranks append in turn. */
static int write_results(const char *path, const sn_coco_set_t *set, char *const *words, const sn_caption_eval_t *e,
                         int max_tokens)
{
    int rc = SN_OK;
    for (int r = 0; r < sn_dist_size(); r++) {
        if (r == sn_dist_rank()) {
            FILE *f = fopen(path, r == 0 ? "w" : "a");
            if (!f) rc = SN_FAIL(SN_EIO, "%s: cannot write", path);
            for (int64_t i = 0; !rc && i < e->n_hyp; i++) {
                fprintf(f, "%lld\t", (long long)(set->image_first + i));
                sn_caption_fprint(f, words, e->hyp + (size_t)i * max_tokens, e->hyp_len[i]);
                for (int64_t k = 0; k < set->n_captions; k++)
                    if (set->image[k] == i) fprintf(f, "\t%s", set->refs[k]);
                fputc('\n', f);
            }
            if (f && fclose(f) != 0 && !rc) rc = SN_FAIL(SN_EIO, "%s: cannot write (disk full?)", path);
        }
        if ((rc = sn_dist_agree(rc))) return rc;
    }
    return SN_OK;
}

static int cmd_eval(const args_t *a)
{
    const sn_caption_train_config_t *c = &a->t;
    sn_train_set_threads(c->threads);
    int rank = sn_dist_rank(), P = sn_dist_size(), rc;
    int64_t ni = 0, nc = 0, first, count;
    sn_coco_set_t set;
    memset(&set, 0, sizeof set);
    rc = sn_coco_count(c->data[0], &ni, &nc);
    if (!rc && a->limit > 0 && a->limit < ni) ni = a->limit;
    sn_shard_range(ni, rank, P, &first, &count);
    if (!rc) rc = sn_coco_load(c->data[0], first, count, SN_COCO_REFS, &set);
    sn_caption_model_t m;
    memset(&m, 0, sizeof m);
    char **words = NULL;
    if (!rc) rc = load_model(a->checkpoint, c->batch > 0 ? c->batch : 64, set.max_len, &m, &words);
    if (!rc && m.crop > set.size) rc = SN_FAIL(SN_EINVAL, "%s: images of %d pixels, the model crops %d", c->data[0], set.size, m.crop);
    rc = sn_dist_agree(rc);
    sn_caption_eval_t e;
    memset(&e, 0, sizeof e);
    int max_tokens = c->max_tokens > 0 ? c->max_tokens : 20;
    if (!rc) rc = sn_caption_evaluate(&m, &set, words, 1, max_tokens, &e);
    if (!rc && rank == 0) {
        printf("%s on %s: %lld images, %lld captions\n", a->checkpoint, c->data[0], (long long)e.images,
               (long long)e.captions);
        printf("loss %.4f, perplexity %.2f over %lld tokens\n", e.loss, e.perplexity, (long long)e.tokens);
        printf("BLEU-1..4 %.2f %.2f %.2f %.2f\n", 100 * e.bleu[0], 100 * e.bleu[1], 100 * e.bleu[2], 100 * e.bleu[3]);
        int ns = a->samples_set ? c->samples : 10;
        sn_caption_print_samples(stdout, &set, words, &e, max_tokens, ns);
        if (a->html) rc = sn_cli_gallery_from_set(a->html, a->checkpoint, &set, words, &e, max_tokens, ns);
        fflush(stdout);
    }
    rc = sn_dist_agree(rc);
    if (!rc && a->out) rc = write_results(a->out, &set, words, &e, max_tokens);
    sn_caption_eval_free(&e);
    sn_coco_free_words(words, m.vocab);
    sn_caption_model_free(&m);
    sn_coco_free(&set);
    return rc;
}

static int cmd_caption(const args_t *a)
{
    sn_train_set_threads(a->t.threads);
    int rc = SN_OK, n = a->n_images, max_tokens = a->t.max_tokens > 0 ? a->t.max_tokens : 20;
    if (sn_dist_size() > 1) return SN_FAIL(SN_EINVAL, "caption runs on one rank (no mpirun -np > 1)");
    sn_caption_model_t m;
    memset(&m, 0, sizeof m);
    char **words = NULL;
    int B = n < 16 ? n : 16;
    SN_TRY(load_model(a->checkpoint, B, 1, &m, &words));
    int S = m.cfg.image_size, crop = m.crop, o = (S - crop) / 2;
    size_t per = (size_t)3 * crop * crop;
    uint8_t *pix = malloc((size_t)3 * S * S);
    float *x = sn_alloc((size_t)B * per * sizeof(float), "image batch");
    int32_t *out = calloc((size_t)n * max_tokens, sizeof *out);
    int *len = calloc((size_t)n, sizeof *len);
    if (!pix || !x || !out || !len) rc = SN_FAIL(SN_ENOMEM, "caption buffers");
    for (int i = 0; !rc && i < n; i += B) {
        int b = n - i < B ? n - i : B;
        for (int k = 0; !rc && k < b; k++) {
            rc = dp_image_load_resized(a->images[i + k], S, 0, pix);
            if (!rc) sn_caption_image(x + (size_t)k * per, pix, S, crop, o, o, 0);
        }
        if (!rc) rc = sn_caption_greedy(&m, x, b, max_tokens, out + (size_t)i * max_tokens, len + i);
        for (int k = 0; !rc && k < b; k++) {
            printf("%s\t", a->images[i + k]);
            sn_caption_fprint(stdout, words, out + (size_t)(i + k) * max_tokens, len[i + k]);
            printf("\n");
        }
    }
    fflush(stdout);
    if (!rc && a->html) rc = sn_cli_gallery_from_files(a->html, a->checkpoint, a->images, n, words, out, len, max_tokens);
    free(pix);
    sn_free(x);
    free(out);
    free(len);
    sn_coco_free_words(words, m.vocab);
    sn_caption_model_free(&m);
    return rc;
}

int sn_cli_caption_main(const char *cmd, int argc, char **argv)
{
    args_t a;
    memset(&a, 0, sizeof a);
    sn_caption_train_defaults(&a.t);
    a.t.max_tokens = 20;
    if (strcmp(cmd, "eval") == 0) a.t.batch = 64;
    a.images = calloc((size_t)argc + 1, sizeof *a.images);
    if (!a.images) return 1;
    int p = parse(cmd, argc, argv, &a);
    if (p != 0) {
        FILE *f = p > 0 ? stdout : stderr;
        if (strcmp(cmd, "train") == 0) usage_train(f);
        else if (strcmp(cmd, "eval") == 0) usage_eval(f);
        else usage_caption(f);
        free(a.images);
        return p > 0 ? 0 : 2;
    }
    const char *env = getenv("OMP_NUM_THREADS");
    if (a.t.threads == 0 && env && atoi(env) > 0) a.t.threads = atoi(env);
    int rc = sn_dist_init(&argc, &argv);
    if (rc) sn_dist_fail(rc, sn_error_message());
    int code = 0;
    if (strcmp(cmd, "train") == 0) {
        sn_caption_train_result_t r;
        rc = sn_train_caption(&a.t, &r);
        if (!rc && sn_dist_rank() == 0) {
            printf("shardnet: done: %lld steps in %.1f s (%.1f images/s, %.0f tokens/s), peak memory per rank %.0f MB\n"
                   "shardnet: time per phase (rank 0): data %.1f s, forward %.1f s, backward %.1f s, allreduce %.1f s, "
                   "optimizer %.1f s\n", (long long)r.steps, r.seconds, r.images_per_s, r.tokens_per_s, r.peak_rss_mb,
                   r.t_data, r.t_forward, r.t_backward, r.t_allreduce, r.t_optim);
            if (r.steady_images_per_s > 0)
                printf("shardnet: after the first %d steps: %.1f images/s (step time only)\n", SN_CAPTION_WARMUP_STEPS,
                       r.steady_images_per_s);
        }
        if (!rc && r.stopped_by_signal) code = EXIT_STOPPED;
    } else if (strcmp(cmd, "eval") == 0) {
        rc = cmd_eval(&a);
    } else {
        rc = cmd_caption(&a);
    }
    free(a.images);
    if (rc) sn_dist_fail(rc, sn_error_message());
    sn_dist_finalize();
    return code;
}
