/*
 * vocab_main.c: sn-vocab, the caption vocabulary tool.
 *
 *   sn-vocab --captions FILE.json [--captions FILE2.json ...] [--threshold 4]
 *            [--out vocab.txt] [--h5 vocab.h5] [--strict] [--threads N] [--quiet]
 *
 * Rank 0 reads and checks the COCO captions JSONs (each parsed once), then scatters
 * contiguous slices of all their captions, taken in command-line order and file order, so
 * the counts are those of the union; every rank tokenizes its slice with OpenMP threads (one counter
 * per thread), the counts are gathered to rank 0, which builds the vocabulary and writes
 * the outputs under temporary names, renaming them only when all are complete. Every
 * decision that can fail is agreed on by all ranks (a broadcast or reduction of the
 * status), so an error on one rank ends all of them with the same non-zero exit code.
 * Must not print from ranks other than 0, nor leave a partial output file behind.
 */
#include <errno.h>
#include <getopt.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hdf5.h>
#include "shardnet/error.h"
#include "coco_json.h"
#include "tokenize.h"
#include "vocab.h"

static const char *usage =
    "usage: sn-vocab --captions FILE.json [--captions FILE2.json ...] [options]\n"
    "\n"
    "Builds the caption vocabulary of one or more COCO captions JSONs: every caption is\n"
    "lower-cased and tokenized exactly as nltk.word_tokenize(caption.lower(),\n"
    "preserve_line=True) does, tokens are counted over the captions of all files together,\n"
    "and those with count >= threshold are kept.\n"
    "Runs under mpirun (each rank counts a slice of the captions) with OpenMP threads;\n"
    "any number of ranks and threads gives the same output bytes.\n"
    "\n"
    "options:\n"
    "  --captions FILE  COCO captions JSON (images[].id/file_name, annotations[].id/image_id/caption);\n"
    "                   repeat it to count the union of several files (two files with the\n"
    "                   same contents are an error: their captions would count twice)\n"
    "  --threshold N    keep tokens that occur at least N times (default 4, N >= 1)\n"
    "  --out PATH       vocabulary text file (default vocab.txt unless --h5 is given):\n"
    "                   one line per id, 'token<TAB>count', id = line number - 1;\n"
    "                   ids 0..3 are <pad> <start> <end> <unk> (count 0), then tokens by\n"
    "                   count descending, ties in code point order\n"
    "  --h5 PATH        also write the vocabulary as HDF5:\n"
    "                   /vocab         variable-length UTF-8 strings [V], the token of each id\n"
    "                   /vocab_counts  int64 [V]\n"
    "                   root attributes: vocab_threshold (int32), source_sha256 (sha256 of the\n"
    "                   JSON file, hex string), source_file (its base name); with several\n"
    "                   --captions each is one UTF-8 string holding one entry per file in\n"
    "                   command-line order, separated by newlines ('\\n', none at the end)\n"
    "  --strict         a caption without image, an empty caption or invalid UTF-8 is an\n"
    "                   error (default: skip it, report it and count it in the summary)\n"
    "  --threads N      OpenMP threads per rank (default: OMP_NUM_THREADS or all cores)\n"
    "  --quiet          no progress lines (errors and the summary are still printed); without\n"
    "                   it rank 0 reports each phase, and every 10% of its share of the\n"
    "                   tokenizing when there are at least 100000 captions\n"
    "  -h, --help       this text\n"
    "\n"
    "Outputs are written under a temporary name and renamed when complete; on error no\n"
    "output file is created or replaced and the exit status is 1 (2 for bad usage).\n";

#define MAX_FILES 256

typedef struct args {
    const char *captions[MAX_FILES], *out, *h5;
    int n_files;
    int threshold, strict, threads, quiet;
} args_t;

static int rank, nranks;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_int(const char *s, int lo, const char *opt, int *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > 1000000000) {
        if (rank == 0) fprintf(stderr, "sn-vocab: %s expects an integer >= %d, got '%s'\n", opt, lo, s);
        return 2;
    }
    *v = (int)x;
    return 0;
}

/* 0 to run, 1 for --help (exit 0), 2 for bad usage. Every rank sees the same argv. */
static int parse_args(int argc, char **argv, args_t *a)
{
    static const struct option opts[] = {
        {"captions", required_argument, 0, 'c'}, {"threshold", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},      {"h5", required_argument, 0, 'H'},
        {"strict", no_argument, 0, 's'},         {"threads", required_argument, 0, 'j'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    *a = (args_t){.threshold = 4};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (a->n_files == MAX_FILES) {
                if (rank == 0) fprintf(stderr, "sn-vocab: at most %d --captions files\n", MAX_FILES);
                return 2;
            }
            a->captions[a->n_files++] = optarg;
            break;
        case 't': if (parse_int(optarg, 1, "--threshold", &a->threshold)) return 2; break;
        case 'o': a->out = optarg; break;
        case 'H': a->h5 = optarg; break;
        case 's': a->strict = 1; break;
        case 'j': if (parse_int(optarg, 1, "--threads", &a->threads)) return 2; break;
        case 'q': a->quiet = 1; break;
        case 'h': if (rank == 0) fputs(usage, stdout); return 1;
        default:
            if (rank == 0)
                fprintf(stderr, "sn-vocab: unknown or incomplete option '%s' (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        if (rank == 0) fprintf(stderr, "sn-vocab: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (a->n_files == 0) {
        if (rank == 0) fprintf(stderr, "sn-vocab: --captions FILE.json is required (try --help)\n");
        return 2;
    }
    if (!a->out && !a->h5) a->out = "vocab.txt";
    return 0;
}

/* ---- rank 0: load, report skipped captions, pack the caption texts -------------------- */

typedef struct skip_log { int64_t shown; } skip_log_t;

static void on_skip(void *ctx, int kind, const char *msg)
{
    skip_log_t *log = ctx;
    (void)kind;
    if (log->shown < 20) fprintf(stderr, "sn-vocab: warning: %s; skipped\n", msg);
    else if (log->shown == 20) fprintf(stderr, "sn-vocab: warning: further skipped captions not shown\n");
    log->shown++;
}

/* ---- every rank: count the tokens of its captions ------------------------------------- */

/* blob holds n NUL-terminated captions back to back. */
/* Progress (rank 0, thread 0, every 10% of its range) when the whole run has at least
 * DP_PROGRESS_MIN captions. */
#define DP_PROGRESS_MIN 100000
static int count_slice(const char *blob, size_t bytes, int64_t n, int64_t n_total, int quiet, dp_counter_t *total)
{
    const char **cap = malloc(((size_t)n + 1) * sizeof *cap);
    if (!cap) return SN_FAIL(SN_ENOMEM, "cannot index %lld captions", (long long)n);
    size_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        if (o >= bytes) {
            free(cap);
            return SN_FAIL(SN_EMPI, "received caption data is truncated (caption %lld of %lld)", (long long)i,
                           (long long)n);
        }
        cap[i] = blob + o;
        o += strlen(blob + o) + 1;
    }
    int nthreads = omp_get_max_threads();
    dp_counter_t **local = calloc((size_t)nthreads, sizeof *local);
    int *status = calloc((size_t)nthreads, sizeof *status);
    char (*msg)[1024] = calloc((size_t)nthreads, sizeof *msg);
    if (!local || !status || !msg) {
        free(cap); free(local); free(status); free(msg);
        return SN_FAIL(SN_ENOMEM, "cannot allocate per-thread counters");
    }
    int report = !quiet && rank == 0 && n_total >= DP_PROGRESS_MIN;
    double t0 = now();
#pragma omp parallel num_threads(nthreads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int rc = 0;
        dp_tokens_t tok;
        dp_tokens_init(&tok);
        local[t] = dp_counter_new();
        if (!local[t]) rc = SN_ENOMEM;
        /* static contiguous ranges: thread t owns [lo, hi) */
        int64_t lo = n * t / nt, hi = n * (t + 1) / nt, step = (hi - lo) / 10 + 1;
        for (int64_t i = lo; i < hi && rc == 0; i++) {
            rc = dp_tokenize(cap[i], &tok);
            for (int k = 0; k < tok.n && rc == 0; k++) rc = dp_counter_add(local[t], dp_token(&tok, k), 1);
            if (report && t == 0 && i > lo && (i - lo) % step == 0)
                fprintf(stderr, "sn-vocab: tokenized %3.0f%% of rank 0's captions (%.1f s)\n",
                        100.0 * (double)(i - lo) / (double)(hi - lo), now() - t0);
        }
        status[t] = rc;
        if (rc) snprintf(msg[t], sizeof msg[t], "%s", sn_error_message());
        dp_tokens_free(&tok);
    }
    int rc = 0;
    for (int t = 0; t < nthreads; t++) {
        if (rc == 0 && status[t]) rc = SN_FAIL(status[t], "thread %d: %s", t, msg[t]);
        if (rc == 0 && local[t]) rc = dp_counter_merge(total, local[t]);
        dp_counter_free(local[t]);
    }
    free(cap); free(local); free(status); free(msg);
    return rc;
}

/* Sums every rank's counter into root's. Collective; returns the agreed status. */
static int gather_counts(dp_counter_t *mine, int my_rc, dp_counter_t *total)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = my_rc;
    if (rc == 0) rc = dp_counter_serialize(mine, &buf, &len);
    if (rc == 0 && len > (size_t)0x7fffffff) rc = SN_FAIL(SN_ERANGE, "token counts of rank %d exceed 2 GiB", rank);
    int agreed;
    MPI_Allreduce(&rc, &agreed, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (agreed != 0) {
        free(buf);
        return rc ? rc : SN_FAIL(agreed, "another rank failed while counting tokens");
    }
    int mylen = (int)len, *lens = NULL, *displs = NULL;
    char *all = NULL;
    long long total_len = 0;
    if (rank == 0) {
        lens = calloc((size_t)nranks, sizeof *lens);
        displs = calloc((size_t)nranks, sizeof *displs);
    }
    MPI_Gather(&mylen, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        for (int r = 0; r < nranks; r++) { displs[r] = (int)total_len; total_len += lens[r]; }
        if (total_len > 0x7fffffff) MPI_Abort(MPI_COMM_WORLD, 1);  /* cannot address it with int displs */
        all = malloc((size_t)total_len + 1);
        if (!all) {
            fprintf(stderr, "sn-vocab: cannot allocate %lld bytes for the gathered counts\n", total_len);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Gatherv(buf, mylen, MPI_CHAR, all, lens, displs, MPI_CHAR, 0, MPI_COMM_WORLD);
    free(buf);
    rc = 0;
    if (rank == 0) {
        /* add in rank order; counts are sums, so the order changes nothing but is fixed */
        for (int r = 0; r < nranks && rc == 0; r++) rc = dp_counter_add_serialized(total, all + displs[r], (size_t)lens[r]);
        free(all); free(lens); free(displs);
    }
    return rc;
}

/* ---- rank 0: outputs ------------------------------------------------------------------ */

/* "a\nb\nc": the sha256 (what = 0) or base name (what = 1) of every file; malloc'ed. */
static char *join_sources(const args_t *a, const dp_coco_t *coco, int what)
{
    size_t len = 1;
    const char *part[MAX_FILES];
    for (int i = 0; i < a->n_files; i++) {
        const char *base = strrchr(a->captions[i], '/');
        part[i] = what == 0 ? coco[i].sha256 : base ? base + 1 : a->captions[i];
        len += strlen(part[i]) + 1;
    }
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < a->n_files; i++) {
        if (i > 0) *p++ = '\n';
        size_t l = strlen(part[i]);
        memcpy(p, part[i], l);
        p += l;
    }
    *p = 0;
    return s;
}

static int write_h5(const char *tmp, const dp_vocab_t *v, const dp_coco_t *coco, const args_t *a)
{
    int rc = 0;
    hid_t fcpl = -1, f = -1, str_t = -1, sp = -1, attr = -1;
    const char *names[2] = {"source_sha256", "source_file"};
    char *vals[2] = {join_sources(a, coco, 0), join_sources(a, coco, 1)};
    if (!vals[0] || !vals[1]) {
        free(vals[0]); free(vals[1]);
        return SN_FAIL(SN_ENOMEM, "%s: cannot allocate the source attributes", tmp);
    }
    if ((fcpl = H5Pcreate(H5P_FILE_CREATE)) < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
        (f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT)) < 0) {
        rc = SN_FAIL(SN_EIO, "%s: cannot create HDF5 file", tmp);
        goto done;
    }
    if ((rc = dp_vocab_h5_write(f, v)) != 0) {
        rc = SN_FAIL(rc, "%s: %s", tmp, sn_error_message());
        goto done;
    }
    for (int i = 0; i < 2 && rc == 0; i++) {
        if ((str_t = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(str_t, strlen(vals[i]) + 1) < 0 ||
            H5Tset_cset(str_t, H5T_CSET_UTF8) < 0 || (sp = H5Screate(H5S_SCALAR)) < 0 ||
            (attr = H5Acreate2(f, names[i], str_t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
            H5Awrite(attr, str_t, vals[i]) < 0)
            rc = SN_FAIL(SN_EIO, "%s: cannot write attribute %s", tmp, names[i]);
        if (attr >= 0) H5Aclose(attr);
        if (sp >= 0) H5Sclose(sp);
        if (str_t >= 0) H5Tclose(str_t);
        attr = sp = str_t = -1;
    }
done:
    if (f >= 0 && H5Fclose(f) < 0 && rc == 0) rc = SN_FAIL(SN_EIO, "%s: cannot close HDF5 file", tmp);
    if (fcpl >= 0) H5Pclose(fcpl);
    free(vals[0]); free(vals[1]);
    return rc;
}

static int write_outputs(const args_t *a, const dp_vocab_t *v, const dp_coco_t *coco)
{
    char tmp_h5[4096], tmp_txt[4096];
    int rc = 0;
    /* the HDF5 file first under its temporary name, then the text file (written and
     * renamed by dp_vocab_write_txt), then the HDF5 rename: a failure before the end
     * leaves no output behind */
    if (a->h5) {
        dp_tmp_name(a->h5, tmp_h5, sizeof tmp_h5);
        rc = write_h5(tmp_h5, v, coco, a);
        if (rc) {
            remove(tmp_h5);
            return rc;
        }
    }
    if (a->out) {
        dp_tmp_name(a->out, tmp_txt, sizeof tmp_txt);
        rc = dp_vocab_write_txt(v, a->out);
        if (rc) {
            if (a->h5) remove(tmp_h5);
            return rc;
        }
    }
    if (a->h5 && rename(tmp_h5, a->h5) != 0) {
        int e = errno;
        remove(tmp_h5);
        if (a->out) remove(a->out);
        return SN_FAIL(SN_EIO, "%s: cannot rename %s to it: %s", a->h5, tmp_h5, strerror(e));
    }
    return 0;
}

/* ---- main ----------------------------------------------------------------------------- */

static int run(const args_t *a)
{
    dp_coco_t *coco = calloc((size_t)a->n_files, sizeof *coco);
    const char **all_caps = NULL;
    skip_log_t log = {0};
    int rc = coco ? 0 : SN_FAIL(SN_ENOMEM, "cannot allocate %d caption files", a->n_files);
    char *blob = NULL;
    long long n_total = 0;
    int *cap_counts = NULL, *byte_counts = NULL, *byte_displs = NULL;

    if (rank == 0) {
        dp_coco_opts_t o = {.strict = a->strict, .on_skip = on_skip, .ctx = &log};
        for (int f = 0; f < a->n_files && rc == 0; f++) {
            double tf = now();
            if (!a->quiet) fprintf(stderr, "sn-vocab: reading %s\n", a->captions[f]);
            rc = dp_coco_load(a->captions[f], &o, &coco[f]);
            if (rc == 0 && coco[f].n_captions == 0) rc = SN_FAIL(SN_EINVAL, "%s: no captions to count", a->captions[f]);
            for (int g = 0; g < f && rc == 0; g++)
                if (strcmp(coco[g].sha256, coco[f].sha256) == 0)
                    rc = SN_FAIL(SN_EINVAL, "%s: same contents as --captions %s (sha256 %s): its captions would count twice",
                                 a->captions[f], a->captions[g], coco[f].sha256);
            if (rc == 0 && !a->quiet)
                fprintf(stderr, "sn-vocab: %lld images, %lld captions, %.1f MB, sha256 %s (%.2f s)\n",
                        (long long)coco[f].n_images, (long long)coco[f].n_captions, (double)coco[f].file_bytes / 1e6,
                        coco[f].sha256, now() - tf);
            if (rc == 0) n_total += coco[f].n_captions;
        }
        /* one list of every caption, files in command-line order: the union is counted
         * as if it were one file, so the slices (and the output) do not depend on where
         * one file ends */
        if (rc == 0) {
            all_caps = malloc((size_t)n_total * sizeof *all_caps);
            cap_counts = calloc((size_t)nranks, sizeof *cap_counts);
            byte_counts = calloc((size_t)nranks, sizeof *byte_counts);
            byte_displs = calloc((size_t)nranks, sizeof *byte_displs);
            size_t bytes = 0;
            int64_t k = 0;
            for (int f = 0; f < a->n_files && all_caps; f++)
                for (int64_t i = 0; i < coco[f].n_captions; i++) {
                    all_caps[k++] = coco[f].captions[i].caption;
                    bytes += strlen(coco[f].captions[i].caption) + 1;
                }
            blob = malloc(bytes + 1);
            if (!all_caps || !cap_counts || !byte_counts || !byte_displs || !blob)
                rc = SN_FAIL(SN_ENOMEM, "cannot allocate %zu bytes to send the captions", bytes);
            else if (bytes > 0x7fffffff)
                rc = SN_FAIL(SN_ERANGE, "%s%s: caption text exceeds 2 GiB", a->captions[0],
                             a->n_files > 1 ? " and the other --captions files" : "");
        }
        if (rc == 0) {
            size_t o2 = 0;
            for (int r = 0; r < nranks; r++) {
                int64_t lo = n_total * r / nranks, hi = n_total * (r + 1) / nranks;
                cap_counts[r] = (int)(hi - lo);
                byte_displs[r] = (int)o2;
                for (int64_t i = lo; i < hi; i++) {
                    size_t l = strlen(all_caps[i]) + 1;
                    memcpy(blob + o2, all_caps[i], l);
                    o2 += l;
                }
                byte_counts[r] = (int)o2 - byte_displs[r];
            }
        }
        free(all_caps);
        if (rc) fprintf(stderr, "sn-vocab: error: %s\n", sn_error_message());
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc) {
        free(blob); free(cap_counts); free(byte_counts); free(byte_displs);
        for (int f = 0; coco && f < a->n_files; f++) dp_coco_free(&coco[f]);
        free(coco);
        return rc;
    }

    double t1 = now();
    int my_caps = 0, my_bytes = 0;
    MPI_Scatter(cap_counts, 1, MPI_INT, &my_caps, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Scatter(byte_counts, 1, MPI_INT, &my_bytes, 1, MPI_INT, 0, MPI_COMM_WORLD);
    char *mine = malloc((size_t)my_bytes + 1);
    if (!mine) {
        fprintf(stderr, "sn-vocab: rank %d: cannot allocate %d bytes of captions\n", rank, my_bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Bcast(&n_total, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    MPI_Scatterv(blob, byte_counts, byte_displs, MPI_CHAR, mine, my_bytes, MPI_CHAR, 0, MPI_COMM_WORLD);
    free(blob); free(cap_counts); free(byte_counts); free(byte_displs);
    if (rank == 0 && !a->quiet)
        fprintf(stderr, "sn-vocab: counting tokens on %d rank%s x %d thread%s\n", nranks, nranks > 1 ? "s" : "",
                omp_get_max_threads(), omp_get_max_threads() > 1 ? "s" : "");

    dp_counter_t *counts = dp_counter_new(), *total = rank == 0 ? dp_counter_new() : NULL;
    rc = (!counts || (rank == 0 && !total)) ? SN_ENOMEM : 0;
    if (rc == 0) rc = count_slice(mine, (size_t)my_bytes, my_caps, n_total, a->quiet, counts);
    free(mine);
    if (rc) fprintf(stderr, "sn-vocab: rank %d: error: %s\n", rank, sn_error_message());
    rc = gather_counts(counts, rc, total);
    dp_counter_free(counts);
    double t2 = now();

    if (rank == 0 && rc == 0) {
        dp_vocab_t v;
        rc = dp_vocab_build(total, a->threshold, &v);
        if (rc == 0) {
            if (!a->quiet)
                fprintf(stderr, "sn-vocab: tokenized %lld captions in %.2f s (%.0f captions/s), %lld distinct tokens\n",
                        n_total, t2 - t1, (double)n_total / (t2 - t1 > 0 ? t2 - t1 : 1e-9),
                        (long long)dp_counter_size(total));
            rc = write_outputs(a, &v, coco);
        }
        if (rc == 0) {
            long long sk[DP_SKIP_KINDS] = {0};
            for (int f = 0; f < a->n_files; f++)
                for (int k = 0; k < DP_SKIP_KINDS; k++) sk[k] += coco[f].n_skipped[k];
            printf("sn-vocab: ");
            for (int f = 0; f < a->n_files; f++) printf("%s%s", f ? " + " : "", a->captions[f]);
            printf(": %lld captions, %lld words with count >= %d + %d special tokens = %lld;"
                   " skipped %lld captions (%lld %s, %lld %s, %lld %s)%s%s%s%s\n",
                   n_total, (long long)(v.n - DP_N_SPECIALS), a->threshold, DP_N_SPECIALS,
                   (long long)v.n, sk[0] + sk[1] + sk[2], sk[0], dp_coco_skip_name(0),
                   sk[1], dp_coco_skip_name(1), sk[2],
                   dp_coco_skip_name(2), a->out ? "; wrote " : "", a->out ? a->out : "",
                   a->h5 ? (a->out ? ", " : "; wrote ") : "", a->h5 ? a->h5 : "");
            fflush(stdout);
            dp_vocab_free(&v);
        } else if (v.tokens) {
            dp_vocab_free(&v);
        }
        if (rc) fprintf(stderr, "sn-vocab: error: %s\n", sn_error_message());
    } else if (rank == 0 && rc) {
        fprintf(stderr, "sn-vocab: error: %s\n", sn_error_message());
    }
    dp_counter_free(total);
    for (int f = 0; coco && f < a->n_files; f++) dp_coco_free(&coco[f]);
    free(coco);
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return rc;
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    args_t a;
    int st = parse_args(argc, argv, &a);
    if (st == 0) {
        if (a.threads > 0) omp_set_num_threads(a.threads);
        st = run(&a) ? 1 : 0;
    } else {
        st = st == 1 ? 0 : 2;
    }
    MPI_Finalize();
    return st;
}
