/*
 * pack_main.c: `sn-pack`, a COCO captions JSON + its image folder + a vocabulary ->
 * coco_<split>.h5 (layout in DESIGN.md, plus /caption_tokens: /images, /image_ids, /file_names, /captions,
 * /caption_lengths, /caption_image, /vocab, /vocab_counts and root attributes).
 *
 * Which images: every image of the JSON that has at least one (kept) caption and loads,
 * in JSON order; rows of /images follow that order whatever the number of ranks and
 * threads. The work runs in three steps:
 *   1. rank 0 loads the JSON (bad captions skipped or fatal), the vocabulary, and counts
 *      the tokens of every caption (OpenMP); the list of candidate images (those with a
 *      caption) is broadcast.
 *   2. probe: the ranks stat and read the header of the candidates (round-robin, OpenMP
 *      threads); missing files and files that are no JPEG / PNG drop out here; the pixel
 *      counts they report are the cost estimates of step 3. The surviving images are the
 *      "jobs", in JSON order.
 *   3. rounds: round k takes the next P x B jobs (B = --batch images per rank) and splits
 *      them into P contiguous ranges of about equal cost (at most B jobs each); each
 *      rank's threads decode + resize its range, largest image first, into a buffer of
 *      B images; the ranks agree on which jobs loaded (an allreduce of one byte per
 *      job), which fixes their rows (the number of loaded jobs before them, in JSON
 *      order), so each rank's loaded images are consecutive rows, written as one
 *      hyperslab in one collective H5Dwrite (a rank with nothing to write joins with an
 *      empty selection). Contiguous ranges matter: with interleaved rows the memory and
 *      file selections differ in shape and HDF5 maps chunks element by element (4x
 *      slower overall). A decode failure (a truncated or corrupt file) drops the image
 *      and its captions; rows are fixed only after decoding, so no image is decoded
 *      twice. Memory per rank: B images plus one decoder per thread.
 * Then the parallel file is closed and rank 0 reopens it serially to shrink /images to
 * the rows written (when some image failed to decode) and to write everything that is not
 * pixels: ids, file names and the vocabulary as variable-length UTF-8 strings (parallel
 * HDF5 1.10 cannot write variable-length data), and the captions, tokenized again block
 * by block (OpenMP) so that no O(captions x L) array is held.
 *
 * Every dataset is created without modification times, so equal inputs give equal file
 * bytes whatever the number of ranks and threads. Messages about bad inputs are gathered
 * to rank 0 and printed in JSON order. The output is written to "<out>.tmp.<pid>" and
 * renamed by rank 0 after every rank closed it; on any error the temporary is removed.
 * Must not: print from ranks other than 0, hang the other ranks when one fails, or hold
 * the pixels of more than B images per rank.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <mpi.h>
#include <omp.h>
#include <hdf5.h>
#include "shardnet/error.h"
#include "coco_json.h"
#include "image.h"
#include "tokenize.h"
#include "vocab.h"

#define MAX_LEN_CAP 64        /* default --max-len: longest caption + 2, at most this */
#define CAPTION_BLOCK 4096    /* captions tokenized and written per step */
#define SHOW_MAX 20           /* bad-input messages printed before "further ... not shown" */

typedef struct opts {
    const char *captions, *images, *vocab, *out;
    int         size, max_len, threshold, fast_decode, strict, threads, batch;
    double      progress; /* seconds between progress lines; < 0: none */
} opts_t;

static int g_rank = 0, g_size = 1;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sn-pack --captions FILE.json --images DIR --vocab vocab.txt --out coco_SPLIT.h5\n"
        "               [--size S] [--max-len L] [--threshold N] [--fast-decode] [--strict]\n"
        "               [--threads N] [--batch B] [--progress SECONDS | --no-progress]\n"
        "\n"
        "Packs a COCO captions JSON, its image folder and a vocabulary (sn-vocab's text file)\n"
        "into one HDF5 file:\n"
        "  /images           uint8  [N_img, 3, S, S]  RGB, PIL-exact Lanczos resize, one chunk per image\n"
        "  /image_ids        int64  [N_img]           COCO image ids\n"
        "  /file_names       string [N_img]           variable-length UTF-8\n"
        "  /captions         int32  [N_cap, L]        <start> tokens <end>, padded with <pad>=0\n"
        "  /caption_lengths  int32  [N_cap]           including <start> and <end>\n"
        "  /caption_image    int32  [N_cap]           row of /images the caption describes\n"
        "  /caption_tokens   string [N_cap]           the caption's tokens separated by spaces\n"
        "                                             (before <unk> mapping and truncation: BLEU references)\n"
        "  /vocab            string [V]               token of each id (<pad> <start> <end> <unk> first)\n"
        "  /vocab_counts     int64  [V]\n"
        "  root attributes: vocab_threshold, image_size, max_len, source_sha256 (of the JSON),\n"
        "  source_file\n"
        "Images are those of the JSON with at least one caption that load, in JSON order;\n"
        "captions keep JSON order. Captions are tokenized like\n"
        "nltk.word_tokenize(caption.lower(), preserve_line=True); unknown words become <unk>.\n"
        "Any number of MPI ranks and threads gives the same file, byte for byte.\n"
        "\n"
        "  --captions FILE   COCO captions JSON\n"
        "  --images DIR      folder of the images named by file_name\n"
        "  --vocab FILE      vocabulary text file of sn-vocab ('token<TAB>count' per id)\n"
        "  --out FILE        output HDF5 file (written under a temporary name, renamed at the end)\n"
        "  --size S          image side in pixels (default 256)\n"
        "  --max-len L       caption row length, <start> and <end> included (default: the\n"
        "                    longest caption + 2, at most %d); longer captions are truncated,\n"
        "                    keeping <end>, and counted\n"
        "  --threshold N     the vocabulary's count threshold, recorded as vocab_threshold and\n"
        "                    checked against the counts (default: the smallest word count)\n"
        "  --fast-decode     decode large JPEGs at libjpeg's DCT scale M/8 first: faster, not\n"
        "                    pixel-exact with PIL\n"
        "  --strict          a bad input (missing or unreadable image, caption without image,\n"
        "                    empty caption) is an error, exit 1 (default: report it, skip it,\n"
        "                    count it; an image that does not load is dropped with its captions)\n"
        "  --threads N       OpenMP threads per rank (default OMP_NUM_THREADS, or the cores\n"
        "                    divided among the ranks of this node)\n"
        "  --batch B         images per rank per collective write (default 32): bounds memory\n"
        "  --progress SEC    seconds between progress lines on stderr (default 5; 0: every round)\n"
        "  --no-progress     no progress lines\n"
        "  -h, --help        this text\n"
        "\n"
        "Run under mpirun to split the images among ranks (mpirun -np 4 sn-pack ...).\n"
        "Exit status: 0 on success, 1 on an error (no output file is left behind), 2 on bad\n"
        "arguments.\n",
        MAX_LEN_CAP);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int parse_int(const char *s, int lo, int hi, const char *opt, int *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) {
        if (g_rank == 0) fprintf(stderr, "sn-pack: %s '%s': expected an integer in %d..%d\n", opt, s, lo, hi);
        return 2;
    }
    *v = (int)x;
    return 0;
}

/* 0 ok, 1 --help printed, 2 bad usage (message on rank 0). */
static int parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"captions", required_argument, 0, 'c'}, {"images", required_argument, 0, 'i'},
        {"vocab", required_argument, 0, 'v'},    {"out", required_argument, 0, 'o'},
        {"size", required_argument, 0, 's'},     {"max-len", required_argument, 0, 'L'},
        {"threshold", required_argument, 0, 'T'}, {"fast-decode", no_argument, 0, 'f'},
        {"strict", no_argument, 0, 'S'},         {"threads", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'b'},    {"progress", required_argument, 0, 'p'},
        {"no-progress", no_argument, 0, 'n'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    *o = (opts_t){.size = 256, .threshold = -1, .batch = 32, .progress = 5.0};
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': o->captions = optarg; break;
        case 'i': o->images = optarg; break;
        case 'v': o->vocab = optarg; break;
        case 'o': o->out = optarg; break;
        case 'f': o->fast_decode = 1; break;
        case 'S': o->strict = 1; break;
        case 'n': o->progress = -1.0; break;
        case 'h': if (g_rank == 0) usage(stdout); return 1;
        case 's': if (parse_int(optarg, 1, 16384, "--size", &o->size)) return 2; break;
        case 'L': if (parse_int(optarg, 2, 100000, "--max-len", &o->max_len)) return 2; break;
        case 'T': if (parse_int(optarg, 1, 1000000000, "--threshold", &o->threshold)) return 2; break;
        case 't': if (parse_int(optarg, 1, 1024, "--threads", &o->threads)) return 2; break;
        case 'b': if (parse_int(optarg, 1, 4096, "--batch", &o->batch)) return 2; break;
        case 'p':
            o->progress = strtod(optarg, &end);
            if (*end || !(o->progress >= 0.0)) {
                if (g_rank == 0) fprintf(stderr, "sn-pack: --progress '%s': expected seconds >= 0\n", optarg);
                return 2;
            }
            break;
        default:
            if (g_rank == 0)
                fprintf(stderr, "sn-pack: unknown or incomplete option '%s' (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        if (g_rank == 0) fprintf(stderr, "sn-pack: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (!o->captions || !o->images || !o->vocab || !o->out) {
        if (g_rank == 0)
            fprintf(stderr, "sn-pack: --captions, --images, --vocab and --out are required (try --help)\n");
        return 2;
    }
    return 0;
}

/* Strips the "source.c:line: " prefix that SN_FAIL puts before a message. */
static const char *plain_message(void)
{
    const char *m = sn_error_message(), *p = strstr(m, ".c:");
    if (!p) return m;
    p += 3;
    while (*p >= '0' && *p <= '9') p++;
    return p[0] == ':' && p[1] == ' ' ? p + 2 : m;
}

/* Agreed status: 0 when every rank passes 0, else the first non-zero code (by rank). */
static int agree(int rc)
{
    int bad = rc != 0 ? g_rank : g_size, first;
    MPI_Allreduce(&bad, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == g_size) return 0;
    int code = rc;
    MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD);
    return code;
}

/* ---- messages about bad inputs, printed by rank 0 in job order ---------------------- */

typedef struct msgs {
    char  *buf;  /* records: int64 index, then the NUL-terminated text */
    size_t len, cap;
} msgs_t;

static void msgs_add(msgs_t *m, int64_t index, const char *text)
{
    size_t tl = strlen(text) + 1, need = m->len + sizeof index + tl;
    if (need > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 4096;
        while (cap < need) cap *= 2;
        char *g = realloc(m->buf, cap);
        if (!g) return; /* the message is lost, the failure is still counted */
        m->buf = g;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, &index, sizeof index);
    memcpy(m->buf + m->len + sizeof index, text, tl);
    m->len = need;
}

typedef struct msg_ref { int64_t index; const char *text; } msg_ref_t;

static int cmp_msg(const void *a, const void *b)
{
    const msg_ref_t *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Collective: gathers every rank's messages to rank 0, which prints them sorted by index
 * ("skipping: ..." or, with strict, the first one as the error). *shown counts the lines
 * printed so far over the whole run. Clears m. */
static void msgs_flush(msgs_t *m, int strict, int64_t *shown)
{
    int mine = (int)m->len, *lens = NULL, *displs = NULL;
    char *all = NULL;
    if (g_rank == 0) {
        lens = calloc((size_t)g_size, sizeof *lens);
        displs = calloc((size_t)g_size, sizeof *displs);
        if (!lens || !displs) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Gather(&mine, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
    long long total = 0;
    if (g_rank == 0) {
        for (int r = 0; r < g_size; r++) { displs[r] = (int)total; total += lens[r]; }
        if (total > INT_MAX || !(all = malloc((size_t)total + 1))) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Gatherv(m->buf, mine, MPI_CHAR, all, lens, displs, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (g_rank == 0 && total > 0) {
        size_t n = 0, cap = 64;
        msg_ref_t *refs = malloc(cap * sizeof *refs);
        for (size_t p = 0; refs && p < (size_t)total;) {
            if (n == cap) {
                msg_ref_t *g = realloc(refs, 2 * cap * sizeof *refs);
                if (!g) break;
                refs = g;
                cap *= 2;
            }
            memcpy(&refs[n].index, all + p, sizeof refs[n].index);
            refs[n].text = all + p + sizeof(int64_t);
            p += sizeof(int64_t) + strlen(refs[n].text) + 1;
            n++;
        }
        if (refs) {
            qsort(refs, n, sizeof *refs, cmp_msg);
            for (size_t i = 0; i < n; i++) {
                if (strict) {
                    fprintf(stderr, "sn-pack: error: %s (--strict)\n", refs[i].text);
                    break;
                }
                if (*shown < SHOW_MAX) fprintf(stderr, "sn-pack: skipping: %s\n", refs[i].text);
                else if (*shown == SHOW_MAX) fprintf(stderr, "sn-pack: further skipped inputs not shown\n");
                (*shown)++;
            }
        }
        free(refs);
    }
    free(all);
    free(lens);
    free(displs);
    m->len = 0;
}

/* ---- step 1 (rank 0): captions JSON, vocabulary, token counts ----------------------- */

typedef struct skip_log { int64_t shown; int strict; } skip_log_t;

static void on_skip(void *ctx, int kind, const char *msg)
{
    skip_log_t *log = ctx;
    (void)kind;
    if (log->strict) return; /* dp_coco_load returns the error itself */
    if (log->shown < SHOW_MAX) fprintf(stderr, "sn-pack: skipping: %s\n", msg);
    else if (log->shown == SHOW_MAX) fprintf(stderr, "sn-pack: further skipped captions not shown\n");
    log->shown++;
}

typedef struct text {
    dp_coco_t  coco;
    dp_vocab_t vocab;
    int32_t   *ntok;          /* [n_captions] tokens of each caption */
    int32_t   *n_caps_of;     /* [n_images] captions of each image */
    int64_t    n_no_caption;  /* images of the JSON without any caption */
} text_t;

static void text_free(text_t *t)
{
    dp_coco_free(&t->coco);
    if (t->vocab.tokens) dp_vocab_free(&t->vocab);
    free(t->ntok);
    free(t->n_caps_of);
    memset(t, 0, sizeof *t);
}

static int load_text(const opts_t *o, text_t *t, skip_log_t *log)
{
    dp_coco_opts_t co = {.strict = o->strict, .on_skip = on_skip, .ctx = log};
    SN_TRY(dp_coco_load(o->captions, &co, &t->coco));
    SN_TRY(dp_vocab_load_txt(o->vocab, &t->vocab));
    int64_t min_count = INT64_MAX;
    for (int64_t i = DP_N_SPECIALS; i < t->vocab.n; i++)
        if (t->vocab.counts[i] < min_count) min_count = t->vocab.counts[i];
    if (o->threshold > 0) {
        if (min_count < o->threshold)
            return SN_FAIL(SN_EINVAL, "%s: a word has count %lld < --threshold %d: not a vocabulary of that threshold",
                           o->vocab, (long long)min_count, o->threshold);
        t->vocab.threshold = o->threshold;
    } else {
        t->vocab.threshold = min_count == INT64_MAX ? -1 : (int)min_count;
    }
    const dp_coco_t *c = &t->coco;
    t->ntok = malloc((size_t)(c->n_captions > 0 ? c->n_captions : 1) * sizeof *t->ntok);
    t->n_caps_of = calloc((size_t)(c->n_images > 0 ? c->n_images : 1), sizeof *t->n_caps_of);
    if (!t->ntok || !t->n_caps_of) return SN_FAIL(SN_ENOMEM, "cannot allocate caption lengths");
    int rc = 0;
    char err[1024] = "";
#pragma omp parallel
    {
        dp_tokens_t tok;
        dp_tokens_init(&tok);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < c->n_captions; i++) {
            if (dp_tokenize(c->captions[i].caption, &tok) != 0) {
#pragma omp critical
                if (rc == 0) {
                    rc = SN_EFORMAT;
                    snprintf(err, sizeof err, "%s", sn_error_message());
                }
                t->ntok[i] = 0;
            } else {
                t->ntok[i] = tok.n;
            }
        }
        dp_tokens_free(&tok);
    }
    if (rc) return SN_FAIL(rc, "%s: %s", o->captions, err);
    for (int64_t i = 0; i < c->n_captions; i++) t->n_caps_of[c->captions[i].image_row]++;
    for (int64_t i = 0; i < c->n_images; i++) t->n_no_caption += t->n_caps_of[i] == 0;
    return 0;
}

/* ---- the candidate list, shared by all ranks ---------------------------------------- */

typedef struct cands {
    int64_t n;
    char   *names;   /* NUL-separated file names */
    size_t  names_len;
    size_t *offset;  /* [n] */
    int64_t *coco_index; /* [n] index in coco.images (rank 0 only) */
} cands_t;

static void cands_free(cands_t *c)
{
    free(c->names);
    free(c->offset);
    free(c->coco_index);
    memset(c, 0, sizeof *c);
}

static int cands_build(const text_t *t, cands_t *c)
{
    const dp_coco_t *co = &t->coco;
    c->coco_index = malloc((size_t)(co->n_images > 0 ? co->n_images : 1) * sizeof *c->coco_index);
    if (!c->coco_index) return SN_FAIL(SN_ENOMEM, "cannot list %lld images", (long long)co->n_images);
    for (int64_t i = 0; i < co->n_images; i++) {
        if (t->n_caps_of[i] == 0) continue;
        c->coco_index[c->n++] = i;
        c->names_len += strlen(co->images[i].file_name) + 1;
    }
    c->names = malloc(c->names_len + 1);
    if (!c->names) return SN_FAIL(SN_ENOMEM, "cannot list %lld images", (long long)c->n);
    size_t p = 0;
    for (int64_t k = 0; k < c->n; k++) {
        const char *s = co->images[c->coco_index[k]].file_name;
        size_t l = strlen(s) + 1;
        memcpy(c->names + p, s, l);
        p += l;
    }
    return 0;
}

/* Collective: rank 0's list to every rank (names only). */
static int cands_share(cands_t *c)
{
    int64_t head[2] = {c->n, (int64_t)c->names_len};
    MPI_Bcast(head, 2, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (g_rank != 0) {
        c->n = head[0];
        c->names_len = (size_t)head[1];
        c->names = malloc(c->names_len + 1);
    }
    int rc = c->names ? 0 : SN_FAIL(SN_ENOMEM, "rank %d: cannot allocate %zu bytes of file names", g_rank, c->names_len);
    if ((rc = agree(rc)) != 0) return rc;
    /* in pieces: MPI counts are int */
    for (size_t p = 0; p < c->names_len; p += (size_t)1 << 30) {
        size_t n = c->names_len - p < ((size_t)1 << 30) ? c->names_len - p : (size_t)1 << 30;
        MPI_Bcast(c->names + p, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
    }
    c->offset = malloc((size_t)(c->n > 0 ? c->n : 1) * sizeof *c->offset);
    rc = c->offset ? 0 : SN_FAIL(SN_ENOMEM, "rank %d: cannot index %lld file names", g_rank, (long long)c->n);
    for (int64_t k = 0, p = 0; rc == 0 && k < c->n; k++) {
        c->offset[k] = (size_t)p;
        p += (int64_t)strlen(c->names + p) + 1;
    }
    return agree(rc);
}

/* ---- step 2: probe ------------------------------------------------------------------- */

static int image_path(char *buf, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap)
        return SN_FAIL(SN_EINVAL, "%s/%s: path too long", dir, name);
    return 0;
}

/* cost[k] = decoded pixels + a constant when candidate k probes fine, -1 when it does not.
 * Round-robin over ranks, dynamic over threads, then an allreduce. Returns the failures. */
static int64_t probe_all(const opts_t *o, const cands_t *c, int threads, int64_t *cost, msgs_t *m)
{
    memset(cost, 0, (size_t)c->n * sizeof *cost);
    int64_t failed = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 8) reduction(+ : failed)
    for (int64_t k = g_rank; k < c->n; k += g_size) {
        const char *name = c->names + c->offset[k];
        char path[PATH_MAX], why[PATH_MAX + 2048];
        struct stat st;
        dp_image_info_t info;
        int bad = 0;
        if (image_path(path, sizeof path, o->images, name) != 0) {
            snprintf(why, sizeof why, "%s", plain_message());
            bad = 1;
        } else if (stat(path, &st) != 0) {
            snprintf(why, sizeof why, "%s: listed in %s but %s", path, o->captions,
                     errno == ENOENT ? "missing on disk" : strerror(errno));
            bad = 1;
        } else if (!S_ISREG(st.st_mode)) {
            snprintf(why, sizeof why, "%s: not a regular file", path);
            bad = 1;
        } else if (dp_image_probe(path, &info) != 0) {
            snprintf(why, sizeof why, "%s", plain_message());
            bad = 1;
        }
        if (bad) {
            cost[k] = -1;
            failed++;
#pragma omp critical
            msgs_add(m, k, why);
        } else {
            cost[k] = (int64_t)info.width * info.height + 65536;
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, cost, (int)c->n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    int64_t all = 0;
    MPI_Allreduce(&failed, &all, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    return all;
}

/* ---- step 3: rounds of decode + collective write -------------------------------------- */

typedef struct by_cost { int64_t cost; int64_t job; } by_cost_t;

static int cmp_cost_desc(const void *a, const void *b)
{
    const by_cost_t *x = a, *y = b;
    if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1;
    return x->job < y->job ? -1 : x->job > y->job;
}

typedef struct h5out {
    hid_t file, images;
} h5out_t;

static int h5_create_parallel(const char *tmp, int64_t n_rows, int S, h5out_t *h)
{
    int rc = 0;
    hid_t fapl = -1, fcpl = -1, space = -1, dcpl = -1;
    hsize_t dims[4] = {(hsize_t)n_rows, 3, (hsize_t)S, (hsize_t)S}, chunk[4] = {1, 3, (hsize_t)S, (hsize_t)S};
    h->file = h->images = -1;
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL) < 0 ||
        (fcpl = H5Pcreate(H5P_FILE_CREATE)) < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
        (h->file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0) {
        rc = SN_FAIL(SN_EIO, "%s: cannot create the HDF5 file (parallel)", tmp);
        goto done;
    }
    if ((space = H5Screate_simple(4, dims, NULL)) < 0 || (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        H5Pset_chunk(dcpl, 4, chunk) < 0 || H5Pset_obj_track_times(dcpl, 0) < 0 ||
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0 || H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        (h->images = H5Dcreate2(h->file, "images", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        rc = SN_FAIL(SN_EIO, "%s: cannot create /images [%lld, 3, %d, %d]", tmp, (long long)n_rows, S, S);
done:
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fapl >= 0) H5Pclose(fapl);
    return rc;
}

/* Collective: closes whatever is open; 0 or an error. */
static int h5_close_parallel(h5out_t *h)
{
    int rc = 0;
    if (h->images >= 0 && H5Dclose(h->images) < 0) rc = SN_EIO;
    if (h->file >= 0 && H5Fclose(h->file) < 0) rc = SN_EIO;
    h->images = h->file = -1;
    return rc;
}

/* Collective write of n rows starting at row0 from buf ([n, 3, S, S], contiguous): one
 * hyperslab in the file and the whole buffer in memory, the same shape, so HDF5 maps
 * chunks without iterating over elements. n == 0 joins with empty selections. */
static int write_rows(const h5out_t *h, const uint8_t *buf, int64_t row0, int64_t n, int S)
{
    int rc = 0;
    hsize_t mdims[4] = {(hsize_t)(n > 0 ? n : 1), 3, (hsize_t)S, (hsize_t)S};
    hsize_t fstart[4] = {(hsize_t)row0, 0, 0, 0}, fcount[4] = {(hsize_t)n, 3, (hsize_t)S, (hsize_t)S};
    hid_t fspace = H5Dget_space(h->images), mspace = H5Screate_simple(4, mdims, NULL), dxpl = -1;
    if (fspace < 0 || mspace < 0 ||
        (n > 0 ? H5Sselect_hyperslab(fspace, H5S_SELECT_SET, fstart, NULL, fcount, NULL)
               : H5Sselect_none(fspace) < 0 || H5Sselect_none(mspace)) < 0) {
        rc = SN_FAIL(SN_EIO, "cannot select rows %lld..%lld of /images", (long long)row0, (long long)(row0 + n - 1));
        goto done;
    }
    if ((dxpl = H5Pcreate(H5P_DATASET_XFER)) < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0 ||
        H5Dwrite(h->images, H5T_NATIVE_UINT8, mspace, fspace, dxpl, buf) < 0)
        rc = SN_FAIL(SN_EIO, "collective write of /images failed");
done:
    if (dxpl >= 0) H5Pclose(dxpl);
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    return rc;
}

typedef struct progress {
    double t0, last;
    int64_t total;
} progress_t;

static void progress_line(const progress_t *p, int64_t done)
{
    double t = now_s() - p->t0, rate = t > 0 ? (double)done / t : 0.0;
    char eta[32] = "?";
    if (rate > 0) snprintf(eta, sizeof eta, "%.0f s", (double)(p->total - done) / rate);
    fprintf(stderr, "sn-pack: %lld/%lld images (%.0f%%), %.1f images/s, ETA %s\n", (long long)done,
            (long long)p->total, p->total ? 100.0 * (double)done / (double)p->total : 100.0, rate, eta);
}

/* Runs the rounds. jobs: candidate index of each job; ok[j] receives 1 (written) or 0.
 * Returns the agreed status; *n_written and *n_failed count over all ranks. */
static int run_rounds(const opts_t *o, const cands_t *c, const int64_t *jobs, const int64_t *cost, int64_t n_jobs,
                      int threads, const h5out_t *h, uint8_t *ok, int64_t *n_written, int64_t *n_failed,
                      msgs_t *m, int64_t *shown)
{
    const int S = o->size, B = o->batch;
    const size_t img = (size_t)3 * S * S;
    const int64_t per_round = (int64_t)B * g_size;
    const int64_t rounds = (n_jobs + per_round - 1) / per_round;
    uint8_t *buf = malloc((size_t)B * img);
    int64_t *mine = malloc((size_t)B * sizeof *mine);
    int *slot_rc = malloc((size_t)B * sizeof *slot_rc);
    by_cost_t *my_order = malloc((size_t)B * sizeof *my_order);
    uint8_t *flags = malloc((size_t)per_round);
    int rc = (!buf || !mine || !slot_rc || !my_order || !flags)
                 ? SN_FAIL(SN_ENOMEM, "rank %d: cannot allocate a buffer of %d images of %dx%d", g_rank, B, S, S)
                 : 0;
    rc = agree(rc);
    progress_t prog = {.t0 = now_s(), .total = n_jobs};
    prog.last = prog.t0;
    *n_written = *n_failed = 0;
    for (int64_t r = 0; r < rounds && rc == 0; r++) {
        int64_t lo = r * per_round, hi = lo + per_round < n_jobs ? lo + per_round : n_jobs, n = hi - lo;
        /* deal: contiguous ranges of jobs, rank q's ending where the running cost passes
         * (q+1)/P of the round's, at most B per rank; a rank's rows are then contiguous
         * too, and it writes them as one block. Identical on every rank. */
        int64_t total = 0, cum = 0, my_lo = lo, my_hi = lo, start = lo;
        for (int64_t j = lo; j < hi; j++) total += cost[jobs[j]];
        for (int q = 0; q < g_size; q++) {
            int64_t end = start, later = (int64_t)(g_size - q - 1) * B; /* what later ranks can take */
            while (end < hi && end - start < B) {
                int take = q == g_size - 1 || end == start || hi - end > later ||
                           (cum + cost[jobs[end]] / 2) * g_size <= total * (q + 1);
                if (!take) break;
                cum += cost[jobs[end]];
                end++;
            }
            if (q == g_rank) { my_lo = start; my_hi = end; }
            start = end;
        }
        int n_mine = (int)(my_hi - my_lo);
        for (int i = 0; i < n_mine; i++) {
            mine[i] = my_lo + i;
            my_order[i] = (by_cost_t){cost[jobs[my_lo + i]], my_lo + i};
        }
        /* threads take the rank's images largest first */
        qsort(my_order, (size_t)n_mine, sizeof *my_order, cmp_cost_desc);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (int i = 0; i < n_mine; i++) {
            int64_t j = my_order[i].job;
            int s = (int)(j - my_lo);
            char path[PATH_MAX];
            const char *name = c->names + c->offset[jobs[j]];
            int e = image_path(path, sizeof path, o->images, name);
            if (e == 0) e = dp_image_load_resized(path, S, o->fast_decode, buf + (size_t)s * img);
            slot_rc[s] = e;
            if (e != 0) {
#pragma omp critical
                msgs_add(m, jobs[j], plain_message());
            }
        }
        memset(flags, 0, (size_t)n);
        for (int s = 0; s < n_mine; s++) flags[mine[s] - lo] = slot_rc[s] == 0 ? 1 : 2;
        MPI_Allreduce(MPI_IN_PLACE, flags, (int)n, MPI_UINT8_T, MPI_MAX, MPI_COMM_WORLD);
        int64_t failed = 0;
        for (int64_t i = 0; i < n; i++) failed += flags[i] != 1;
        if (failed > 0) msgs_flush(m, o->strict, shown);
        *n_failed += failed;
        if (failed > 0 && o->strict) {
            rc = SN_EINVAL;
            break;
        }
        /* rows: loaded jobs before this one, in job order; this rank's loaded images are
         * moved together (a failed one leaves a gap) to be written as one block */
        int64_t row = *n_written, my_row0 = -1, n_ok = 0;
        for (int64_t i = 0; i < n; i++) {
            if (lo + i == my_lo) my_row0 = row;
            if (flags[i] == 1) {
                ok[lo + i] = 1;
                row++;
            }
        }
        *n_written = row;
        for (int s = 0; s < n_mine; s++) {
            if (slot_rc[s] != 0) continue;
            if (n_ok != s) memmove(buf + (size_t)n_ok * img, buf + (size_t)s * img, img);
            n_ok++;
        }
        if (my_row0 < 0) my_row0 = row;
        rc = agree(write_rows(h, buf, my_row0, n_ok, S));
        if (rc != 0 && g_rank == 0) fprintf(stderr, "sn-pack: error: %s: %s\n", o->out, plain_message());
        double t = now_s();
        if (g_rank == 0 && o->progress >= 0.0 && r + 1 < rounds && t - prog.last >= o->progress) {
            progress_line(&prog, hi);
            prog.last = t;
        }
    }
    free(buf); free(mine); free(slot_rc); free(my_order); free(flags);
    return rc;
}

/* ---- rank 0: everything but pixels, in the reopened file ----------------------------- */

static int write_attr_int(hid_t loc, const char *name, int32_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR), a = -1;
    int rc = 0;
    if (sp < 0 || (a = H5Acreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, H5T_NATIVE_INT32, &v) < 0)
        rc = SN_FAIL(SN_EIO, "cannot write attribute %s", name);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

static int write_attr_str(hid_t loc, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = -1, a = -1;
    int rc = 0;
    if (t < 0 || H5Tset_size(t, strlen(v) + 1) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
        (sp = H5Screate(H5S_SCALAR)) < 0 || (a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, t, v) < 0)
        rc = SN_FAIL(SN_EIO, "cannot write attribute %s", name);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return rc;
}

/* Creates a dataset of rank 1 or 2 (contiguous, no times) and returns it. */
static hid_t make_ds(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = -1;
    if (sp >= 0 && dcpl >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0)
        ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return ds;
}

/* Writes rows [start, start + count) of a rank-1 or rank-2 dataset. */
static int write_block(hid_t ds, hid_t memtype, int rank, hsize_t start, hsize_t count, hsize_t width, const void *data)
{
    hsize_t fstart[2] = {start, 0}, fcount[2] = {count, width}, mdims[2] = {count, width};
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(rank, mdims, NULL);
    int rc = 0;
    if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, fstart, NULL, fcount, NULL) < 0 ||
        H5Dwrite(ds, memtype, ms, fs, H5P_DEFAULT, data) < 0)
        rc = SN_EIO;
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

typedef struct cap_stats { int64_t n_cap, n_truncated, n_dropped; int max_len; } cap_stats_t;

static int write_rest(const opts_t *o, const char *tmp, text_t *t, const cands_t *c, const int64_t *jobs,
                      int64_t n_jobs, const uint8_t *ok, int64_t n_rows, int threads, cap_stats_t *cs)
{
    const dp_coco_t *co = &t->coco;
    int rc = 0;
    hid_t f = -1, ds = -1, str_t = -1, d_cap = -1, d_len = -1, d_img = -1, d_tok = -1;
    int64_t *img_row = malloc((size_t)(co->n_images > 0 ? co->n_images : 1) * sizeof *img_row);
    int64_t *ids = malloc((size_t)n_rows * sizeof *ids);
    const char **names = malloc((size_t)n_rows * sizeof *names);
    int32_t *cbuf = NULL, *lbuf = NULL, *ibuf = NULL;
    int64_t *cidx = NULL;
    char **tbuf = NULL;   /* token strings of a block */
    if (!img_row || !ids || !names) {
        rc = SN_FAIL(SN_ENOMEM, "cannot allocate the image index");
        goto done;
    }
    for (int64_t i = 0; i < co->n_images; i++) img_row[i] = -1;
    for (int64_t j = 0, row = 0; j < n_jobs; j++) {
        if (!ok[j]) continue;
        int64_t ci = c->coco_index[jobs[j]];
        img_row[ci] = row;
        ids[row] = co->images[ci].id;
        names[row] = co->images[ci].file_name;
        row++;
    }
    /* captions kept: those of written images; the row length */
    int64_t n_cap = 0;
    int longest = 0;
    for (int64_t i = 0; i < co->n_captions; i++) {
        if (img_row[co->captions[i].image_row] < 0) continue;
        n_cap++;
        if (t->ntok[i] > longest) longest = t->ntok[i];
    }
    int L = o->max_len > 0 ? o->max_len : (longest + 2 < MAX_LEN_CAP ? longest + 2 : MAX_LEN_CAP);
    cs->max_len = L;
    cs->n_cap = n_cap;
    cs->n_dropped = co->n_captions - n_cap;

    if ((f = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT)) < 0) {
        rc = SN_FAIL(SN_EIO, "%s: cannot reopen the HDF5 file", tmp);
        goto done;
    }
    if (n_rows < n_jobs) {
        hsize_t dims[4] = {(hsize_t)n_rows, 3, (hsize_t)o->size, (hsize_t)o->size};
        if ((ds = H5Dopen2(f, "images", H5P_DEFAULT)) < 0 || H5Dset_extent(ds, dims) < 0) {
            rc = SN_FAIL(SN_EIO, "%s: cannot shrink /images to %lld rows", tmp, (long long)n_rows);
            goto done;
        }
        H5Dclose(ds);
        ds = -1;
    }
    hsize_t nr = (hsize_t)n_rows;
    if ((ds = make_ds(f, "image_ids", H5T_STD_I64LE, 1, &nr)) < 0 ||
        H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) < 0) {
        rc = SN_FAIL(SN_EIO, "%s: cannot write /image_ids", tmp);
        goto done;
    }
    H5Dclose(ds);
    if ((str_t = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(str_t, H5T_VARIABLE) < 0 ||
        H5Tset_cset(str_t, H5T_CSET_UTF8) < 0 || (ds = make_ds(f, "file_names", str_t, 1, &nr)) < 0 ||
        H5Dwrite(ds, str_t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0) {
        rc = SN_FAIL(SN_EIO, "%s: cannot write /file_names", tmp);
        goto done;
    }
    H5Dclose(ds);
    ds = -1;

    hsize_t cdims[2] = {(hsize_t)n_cap, (hsize_t)L};
    if ((d_cap = make_ds(f, "captions", H5T_STD_I32LE, 2, cdims)) < 0 ||
        (d_len = make_ds(f, "caption_lengths", H5T_STD_I32LE, 1, cdims)) < 0 ||
        (d_img = make_ds(f, "caption_image", H5T_STD_I32LE, 1, cdims)) < 0 ||
        (d_tok = make_ds(f, "caption_tokens", str_t, 1, cdims)) < 0) {
        rc = SN_FAIL(SN_EIO, "%s: cannot create the caption datasets", tmp);
        goto done;
    }
    cbuf = malloc((size_t)CAPTION_BLOCK * (size_t)L * sizeof *cbuf);
    lbuf = malloc(CAPTION_BLOCK * sizeof *lbuf);
    ibuf = malloc(CAPTION_BLOCK * sizeof *ibuf);
    cidx = malloc(CAPTION_BLOCK * sizeof *cidx);
    tbuf = calloc(CAPTION_BLOCK, sizeof *tbuf);
    if (!cbuf || !lbuf || !ibuf || !cidx || !tbuf) {
        rc = SN_FAIL(SN_ENOMEM, "cannot allocate a caption block");
        goto done;
    }
    int64_t written = 0, truncated = 0;
    for (int64_t i = 0; i < co->n_captions && rc == 0;) {
        int nb = 0;
        for (; i < co->n_captions && nb < CAPTION_BLOCK; i++)
            if (img_row[co->captions[i].image_row] >= 0) cidx[nb++] = i;
        int64_t trunc_here = 0;
        int bad = 0;
#pragma omp parallel num_threads(threads) reduction(+ : trunc_here, bad)
        {
            dp_tokens_t tok;
            dp_tokens_init(&tok);
#pragma omp for schedule(static)
            for (int k = 0; k < nb; k++) {
                const dp_coco_caption_t *cap = &co->captions[cidx[k]];
                int32_t *rowp = cbuf + (size_t)k * L;
                memset(rowp, 0, (size_t)L * sizeof *rowp);
                if (dp_tokenize(cap->caption, &tok) != 0) {
                    bad++;
                    continue;
                }
                int n = tok.n;
                if (n + 2 > L) {
                    n = L - 2;
                    trunc_here++;
                }
                rowp[0] = DP_START;
                for (int w = 0; w < n; w++) rowp[1 + w] = dp_vocab_id(&t->vocab, dp_token(&tok, w));
                rowp[n + 1] = DP_END;
                lbuf[k] = n + 2;
                size_t chars = 1;   /* every token, before <unk> mapping and truncation */
                for (int w = 0; w < tok.n; w++) chars += strlen(dp_token(&tok, w)) + 1;
                char *text = malloc(chars), *q = text;
                if (!text) {
                    bad++;
                    continue;
                }
                for (int w = 0; w < tok.n; w++) {
                    size_t len = strlen(dp_token(&tok, w));
                    if (w) *q++ = ' ';
                    memcpy(q, dp_token(&tok, w), len);
                    q += len;
                }
                *q = '\0';
                free(tbuf[k]);
                tbuf[k] = text;
                ibuf[k] = (int32_t)img_row[cap->image_row];
            }
            dp_tokens_free(&tok);
        }
        if (bad) {
            rc = SN_FAIL(SN_EFORMAT, "%s: a caption no longer tokenizes (or out of memory)", o->captions);
            break;
        }
        truncated += trunc_here;
        if (nb > 0 && (write_block(d_cap, H5T_NATIVE_INT32, 2, (hsize_t)written, (hsize_t)nb, (hsize_t)L, cbuf) ||
                       write_block(d_len, H5T_NATIVE_INT32, 1, (hsize_t)written, (hsize_t)nb, 1, lbuf) ||
                       write_block(d_img, H5T_NATIVE_INT32, 1, (hsize_t)written, (hsize_t)nb, 1, ibuf) ||
                       write_block(d_tok, str_t, 1, (hsize_t)written, (hsize_t)nb, 1, tbuf)))
            rc = SN_FAIL(SN_EIO, "%s: cannot write captions %lld..%lld", tmp, (long long)written,
                         (long long)(written + nb - 1));
        written += nb;
    }
    cs->n_truncated = truncated;
    if (rc) goto done;
    if ((rc = dp_vocab_h5_write(f, &t->vocab)) != 0) {
        rc = SN_FAIL(rc, "%s: %s", tmp, plain_message());
        goto done;
    }
    const char *base = strrchr(o->captions, '/');
    if ((rc = write_attr_int(f, "image_size", o->size)) || (rc = write_attr_int(f, "max_len", L)) ||
        (rc = write_attr_str(f, "source_sha256", co->sha256)) ||
        (rc = write_attr_str(f, "source_file", base ? base + 1 : o->captions)))
        rc = SN_FAIL(rc, "%s: %s", tmp, plain_message());
done:
    if (ds >= 0) H5Dclose(ds);
    if (d_cap >= 0) H5Dclose(d_cap);
    if (d_len >= 0) H5Dclose(d_len);
    if (d_img >= 0) H5Dclose(d_img);
    if (d_tok >= 0) H5Dclose(d_tok);
    if (str_t >= 0) H5Tclose(str_t);
    if (tbuf)
        for (int k = 0; k < CAPTION_BLOCK; k++) free(tbuf[k]);
    if (f >= 0 && H5Fclose(f) < 0 && rc == 0) rc = SN_FAIL(SN_EIO, "%s: cannot close the HDF5 file", tmp);
    free(img_row); free(ids); free(names); free(cbuf); free(lbuf); free(ibuf); free(cidx); free(tbuf);
    return rc;
}

/* ---- main ----------------------------------------------------------------------------- */

static int default_threads(const opts_t *o)
{
    if (o->threads > 0) return o->threads;
    if (getenv("OMP_NUM_THREADS")) return omp_get_max_threads();
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    int t = omp_get_num_procs() / local;
    return t < 1 ? 1 : t;
}

static int run(const opts_t *o)
{
    const double t0 = now_s();
    const int threads = default_threads(o);
    omp_set_num_threads(threads);
    text_t text = {0};
    cands_t cands = {0};
    msgs_t msgs = {0};
    skip_log_t log = {.strict = o->strict};
    int64_t shown = 0, *cost = NULL, *jobs = NULL, n_jobs = 0, n_rows = 0, n_decode_failed = 0, n_probe_failed = 0;
    uint8_t *ok = NULL;
    h5out_t h = {-1, -1};
    char tmp[PATH_MAX] = "";
    int created = 0;
    cap_stats_t cs = {0};

    /* 1. text */
    int rc = 0;
    if (g_rank == 0) {
        rc = load_text(o, &text, &log);
        if (rc == 0) rc = cands_build(&text, &cands);
        if (rc == 0 && cands.n == 0) rc = SN_FAIL(SN_EINVAL, "%s: no image has a caption", o->captions);
        if (rc) fprintf(stderr, "sn-pack: error: %s\n", plain_message());
    }
    if ((rc = agree(rc)) != 0) goto out;
    if ((rc = cands_share(&cands)) != 0) {
        if (g_rank == 0) fprintf(stderr, "sn-pack: error: %s\n", plain_message());
        goto out;
    }

    /* 2. probe */
    cost = malloc((size_t)cands.n * sizeof *cost);
    jobs = malloc((size_t)cands.n * sizeof *jobs);
    ok = calloc((size_t)cands.n, 1);
    rc = cost && jobs && ok ? 0 : SN_FAIL(SN_ENOMEM, "rank %d: cannot allocate the image table", g_rank);
    if ((rc = agree(rc)) != 0) goto out;
    n_probe_failed = probe_all(o, &cands, threads, cost, &msgs);
    if (n_probe_failed > 0) msgs_flush(&msgs, o->strict, &shown);
    if (n_probe_failed > 0 && o->strict) {
        rc = SN_EINVAL;
        goto out;
    }
    for (int64_t k = 0; k < cands.n; k++)
        if (cost[k] >= 0) jobs[n_jobs++] = k;
    if (n_jobs == 0) {
        if (g_rank == 0) fprintf(stderr, "sn-pack: error: none of the %lld images with captions loads\n", (long long)cands.n);
        rc = SN_EINVAL;
        goto out;
    }
    if (g_rank == 0 && o->progress >= 0.0)
        fprintf(stderr, "sn-pack: %lld images with captions, %lld readable; packing them with %d rank%s x %d thread%s (%.2f s)\n",
                (long long)cands.n, (long long)n_jobs, g_size, g_size > 1 ? "s" : "", threads, threads > 1 ? "s" : "",
                now_s() - t0);

    /* 3. pixels, in parallel */
    if (g_rank == 0) dp_tmp_name(o->out, tmp, sizeof tmp);
    MPI_Bcast(tmp, (int)sizeof tmp, MPI_CHAR, 0, MPI_COMM_WORLD);
    rc = agree(h5_create_parallel(tmp, n_jobs, o->size, &h));
    created = 1;
    if (rc != 0) {
        if (g_rank == 0) fprintf(stderr, "sn-pack: error: %s\n", plain_message());
    } else {
        rc = run_rounds(o, &cands, jobs, cost, n_jobs, threads, &h, ok, &n_rows, &n_decode_failed, &msgs, &shown);
    }
    if (h5_close_parallel(&h) != 0 && rc == 0) rc = SN_FAIL(SN_EIO, "%s: cannot close the HDF5 file", tmp);
    if ((rc = agree(rc)) != 0) goto out;
    if (n_rows == 0) {
        if (g_rank == 0) fprintf(stderr, "sn-pack: error: none of the %lld images with captions loads\n", (long long)cands.n);
        rc = SN_EINVAL;
        goto out;
    }

    /* 4. rank 0: the rest, then the rename */
    if (g_rank == 0) {
        rc = write_rest(o, tmp, &text, &cands, jobs, n_jobs, ok, n_rows, threads, &cs);
        if (rc == 0 && rename(tmp, o->out) != 0)
            rc = SN_FAIL(SN_EIO, "%s: cannot rename %s to it: %s", o->out, tmp, strerror(errno));
        if (rc) fprintf(stderr, "sn-pack: error: %s\n", plain_message());
    }
    rc = agree(rc);
    if (rc == 0 && g_rank == 0) {
        double secs = now_s() - t0;
        const dp_coco_t *co = &text.coco;
        printf("sn-pack: packed %lld of %lld images (%dx%d) and %lld captions (max_len %d, %lld truncated) "
               "into %s in %.2f s (%.1f images/s, %d rank%s x %d thread%s%s); skipped %lld images "
               "(%lld missing or unreadable, %lld failed to decode, %lld without captions), %lld captions "
               "(%lld of dropped images, %lld without image, %lld empty, %lld invalid UTF-8)\n",
               (long long)n_rows, (long long)co->n_images, o->size, o->size, (long long)cs.n_cap, cs.max_len,
               (long long)cs.n_truncated, o->out, secs, secs > 0 ? (double)n_rows / secs : 0.0, g_size,
               g_size > 1 ? "s" : "", threads, threads > 1 ? "s" : "", o->fast_decode ? ", fast decode" : "",
               (long long)(co->n_images - n_rows), (long long)n_probe_failed, (long long)n_decode_failed,
               (long long)text.n_no_caption,
               (long long)(cs.n_dropped + co->n_skipped[0] + co->n_skipped[1] + co->n_skipped[2]),
               (long long)cs.n_dropped, (long long)co->n_skipped[DP_SKIP_NO_IMAGE],
               (long long)co->n_skipped[DP_SKIP_EMPTY], (long long)co->n_skipped[DP_SKIP_BAD_UTF8]);
        fflush(stdout);
    }
out:
    /* every rank reaches here together; only rank 0 touches the file system */
    if (rc != 0 && created && g_rank == 0) remove(tmp);
    free(cost);
    free(jobs);
    free(ok);
    free(msgs.buf);
    cands_free(&cands);
    text_free(&text);
    return rc;
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    opts_t o;
    int st = parse_args(argc, argv, &o);
    if (st == 0) st = run(&o) ? 1 : 0;
    else st = st == 1 ? 0 : 2;
    MPI_Finalize();
    return st;
}
