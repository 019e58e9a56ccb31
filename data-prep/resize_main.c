/*
 * resize_main.c: `sn-resize`, a folder of JPEG / PNG images -> a folder of the same file
 * names resized to S x S with PIL's Lanczos antialiasing, each saved in the format its
 * content has (JPEG at quality 75, PIL's default, or PNG), like the reference notebook's
 * PIL loop (Image.open(f).convert("RGB").resize((S, S), Image.ANTIALIAS).save(...)).
 *
 * Parallel: MPI ranks take disjoint sets of images, dealt by file size (largest first, each
 * to the rank with the least bytes so far) so that ranks finish together; the OpenMP
 * threads of a rank take its images one at a time. Progress and a stop request travel in
 * non-blocking allreduces that the main thread of each rank tests between images, so no
 * rank ever blocks on a slower one until all are done.
 *
 * Must not: hold more than one image per thread (memory stays bounded whatever the
 * number of images), leave a partially written file under an output name (files are
 * written to a temporary and renamed), hang the other ranks when one fails, or talk from
 * ranks other than 0 except to report their own errors.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <mpi.h>
#include <omp.h>
#include "shardnet/error.h"
#include "image.h"

typedef struct opts {
    const char *in, *out;
    int         size, fast_decode, strict, threads;
    double      progress; /* seconds between progress lines; < 0: none */
} opts_t;

typedef struct job {
    char    *names;   /* all names, NUL-separated */
    size_t   names_len;
    int64_t *sizes;   /* (count) file sizes in bytes */
    size_t  *offset;  /* (count) start of each name in names */
    int      count;
} job_t;

/* Counters summed over ranks: images written, skipped (unreadable), failed, ranks done. */
enum { C_DONE, C_SKIPPED, C_FAILED, C_FINISHED, C_N };

static int g_rank = 0, g_size = 1;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sn-resize --in DIR --out DIR [--size S] [--fast-decode] [--strict]\n"
        "                 [--threads N] [--progress SECONDS | --no-progress]\n"
        "\n"
        "Resizes every .jpg/.jpeg/.png file of DIR (not subfolders, not hidden files) to\n"
        "S x S RGB with PIL-compatible Lanczos antialiasing (the aspect ratio is not kept,\n"
        "like PIL's resize((S, S))) and writes it under the same name to the output folder,\n"
        "in the format of its content: JPEG at quality 75 (PIL's default) or PNG. The\n"
        "format is recognised by magic bytes, so a PNG named .jpg loads (and stays PNG).\n"
        "Grayscale, CMYK, palette and alpha images become RGB (alpha is dropped).\n"
        "\n"
        "  --in DIR          folder of source images\n"
        "  --out DIR         output folder (created with its parents if missing; must\n"
        "                    differ from --in)\n"
        "  --size S          output side in pixels (default 256)\n"
        "  --fast-decode     decode large JPEGs at libjpeg's DCT scale M/8, the smallest\n"
        "                    still >= S, before resampling: faster, not pixel-exact with PIL\n"
        "  --strict          stop at the first unreadable image and exit 1 (default: report\n"
        "                    it, skip it and count it in the summary)\n"
        "  --threads N       OpenMP threads per rank (default OMP_NUM_THREADS, or the cores\n"
        "                    divided among the ranks of this node)\n"
        "  --progress SEC    seconds between progress lines on stderr (default 5; 0: at\n"
        "                    every update)\n"
        "  --no-progress     no progress lines\n"
        "  -h, --help        this text\n"
        "\n"
        "Run under mpirun to split the images among ranks (e.g. mpirun -np 4 sn-resize ...).\n"
        "Exit status: 0 when every image was written or skipped, 1 on an error (a failed\n"
        "write, or an unreadable image with --strict), 2 on bad arguments.\n");
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Parses the command line; 0 ok, 1 --help printed, 2 bad usage (message on rank 0). */
static int parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"in", required_argument, 0, 'i'},       {"out", required_argument, 0, 'o'},
        {"size", required_argument, 0, 's'},     {"fast-decode", no_argument, 0, 'f'},
        {"strict", no_argument, 0, 'S'},         {"threads", required_argument, 0, 't'},
        {"progress", required_argument, 0, 'p'}, {"no-progress", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    *o = (opts_t){.size = 256, .progress = 5.0};
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': o->in = optarg; break;
        case 'o': o->out = optarg; break;
        case 'f': o->fast_decode = 1; break;
        case 'S': o->strict = 1; break;
        case 'n': o->progress = -1.0; break;
        case 'h': if (g_rank == 0) usage(stdout); return 1;
        case 's':
            o->size = (int)strtol(optarg, &end, 10);
            if (*end || o->size < 1 || o->size > 16384) {
                if (g_rank == 0) fprintf(stderr, "sn-resize: --size '%s': expected an integer in 1..16384\n", optarg);
                return 2;
            }
            break;
        case 't':
            o->threads = (int)strtol(optarg, &end, 10);
            if (*end || o->threads < 1 || o->threads > 1024) {
                if (g_rank == 0) fprintf(stderr, "sn-resize: --threads '%s': expected an integer in 1..1024\n", optarg);
                return 2;
            }
            break;
        case 'p':
            o->progress = strtod(optarg, &end);
            if (*end || !(o->progress >= 0.0)) {
                if (g_rank == 0) fprintf(stderr, "sn-resize: --progress '%s': expected seconds >= 0\n", optarg);
                return 2;
            }
            break;
        default:
            if (g_rank == 0)
                fprintf(stderr, "sn-resize: unknown or incomplete option '%s' (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        if (g_rank == 0) fprintf(stderr, "sn-resize: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (!o->in || !o->out) {
        if (g_rank == 0) fprintf(stderr, "sn-resize: --in DIR and --out DIR are required (try --help)\n");
        return 2;
    }
    return 0;
}

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void job_free(job_t *j)
{
    free(j->names);
    free(j->sizes);
    free(j->offset);
    memset(j, 0, sizeof *j);
}

/* Fills the offsets of the NUL-separated names. */
static int job_index(job_t *j)
{
    j->offset = malloc((size_t)(j->count > 0 ? j->count : 1) * sizeof *j->offset);
    if (!j->offset) return SN_FAIL(SN_ENOMEM, "cannot allocate %d name offsets", j->count);
    size_t pos = 0;
    for (int i = 0; i < j->count; i++) {
        j->offset[i] = pos;
        pos += strlen(j->names + pos) + 1;
    }
    return 0;
}

/* mkdir -p: creates dir and its missing parents. */
static int make_dirs(const char *dir)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) { errno = ENAMETOOLONG; return -1; }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* Rank 0: lists the image files of the input folder (sorted) and prepares the output. */
static int list_images(const opts_t *o, job_t *j)
{
    memset(j, 0, sizeof *j);
    char in_real[PATH_MAX], out_real[PATH_MAX];
    struct stat st;
    if (stat(o->in, &st) != 0) return SN_FAIL(SN_EIO, "--in %s: %s", o->in, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return SN_FAIL(SN_EINVAL, "--in %s: not a folder", o->in);
    if (stat(o->out, &st) != 0) {
        if (errno != ENOENT || make_dirs(o->out) != 0)
            return SN_FAIL(SN_EIO, "--out %s: cannot create: %s", o->out, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return SN_FAIL(SN_EINVAL, "--out %s: exists and is not a folder", o->out);
    }
    if (!realpath(o->in, in_real) || !realpath(o->out, out_real))
        return SN_FAIL(SN_EIO, "cannot resolve --in %s / --out %s: %s", o->in, o->out, strerror(errno));
    if (strcmp(in_real, out_real) == 0)
        return SN_FAIL(SN_EINVAL, "--out %s is the input folder: resized files would replace the originals", o->out);

    DIR *dir = opendir(o->in);
    if (!dir) return SN_FAIL(SN_EIO, "--in %s: cannot open: %s", o->in, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            char **grown = realloc(names, (size_t)cap * sizeof *names);
            if (!grown) { rc = SN_FAIL(SN_ENOMEM, "cannot list %s", o->in); break; }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = SN_FAIL(SN_ENOMEM, "cannot list %s", o->in); break; }
        n++;
    }
    closedir(dir);
    if (rc == 0 && n > 0) qsort(names, (size_t)n, sizeof *names, cmp_str);
    /* Missing or odd entries (dangling links, folders named x.jpg) stay in the list and
     * fail at load time with their own message; their size counts as 0. */
    size_t total = 0;
    for (int i = 0; rc == 0 && i < n; i++) total += strlen(names[i]) + 1;
    if (rc == 0) {
        j->count = n;
        j->names_len = total;
        j->names = malloc(total > 0 ? total : 1);
        j->sizes = calloc((size_t)(n > 0 ? n : 1), sizeof *j->sizes);
        if (!j->names || !j->sizes) rc = SN_FAIL(SN_ENOMEM, "cannot list %s", o->in);
    }
    size_t pos = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t len = strlen(names[i]) + 1;
        memcpy(j->names + pos, names[i], len);
        pos += len;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", o->in, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) j->sizes[i] = (int64_t)st.st_size;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc == 0) rc = job_index(j);
    if (rc != 0) job_free(j);
    return rc;
}

/* Sends rank 0's list to every rank; the return code is the same on all ranks. */
static int share_job(job_t *j, int list_rc)
{
    int64_t head[3] = {list_rc, j->count, (int64_t)j->names_len};
    MPI_Bcast(head, 3, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (head[0] != 0) return (int)head[0];
    if (g_rank != 0) {
        j->count = (int)head[1];
        j->names_len = (size_t)head[2];
        j->names = malloc(j->names_len > 0 ? j->names_len : 1);
        j->sizes = malloc((size_t)(j->count > 0 ? j->count : 1) * sizeof *j->sizes);
        if (!j->names || !j->sizes) {
            fprintf(stderr, "sn-resize: rank %d: out of memory for a list of %d names\n", g_rank, j->count);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Bcast(j->names, (int)j->names_len, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Bcast(j->sizes, j->count, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (g_rank != 0 && job_index(j) != 0) {
        fprintf(stderr, "sn-resize: rank %d: %s\n", g_rank, sn_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 0;
}

typedef struct by_size { int64_t size; int index; } by_size_t;

static int cmp_by_size(const void *a, const void *b)
{
    const by_size_t *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return x->index - y->index;
}

/* The images of this rank, largest first: the longest-processing-time-first deal of all
 * images over the ranks by file size. Identical on every rank (no communication). */
static int *my_images(const job_t *j, int *n_mine)
{
    by_size_t *order = malloc((size_t)(j->count > 0 ? j->count : 1) * sizeof *order);
    int64_t *load = calloc((size_t)g_size, sizeof *load);
    int *mine = malloc((size_t)(j->count > 0 ? j->count : 1) * sizeof *mine);
    if (!order || !load || !mine) {
        free(order); free(load); free(mine);
        return NULL;
    }
    for (int i = 0; i < j->count; i++) order[i] = (by_size_t){j->sizes[i], i};
    qsort(order, (size_t)j->count, sizeof *order, cmp_by_size);
    int n = 0;
    for (int i = 0; i < j->count; i++) {
        int best = 0;
        for (int r = 1; r < g_size; r++) if (load[r] < load[best]) best = r;
        load[best] += order[i].size + 4096; /* + a per-file cost, so empty files spread too */
        if (best == g_rank) mine[n++] = order[i].index;
    }
    free(order);
    free(load);
    *n_mine = n;
    return mine;
}

typedef struct progress {
    MPI_Request req;
    int64_t     send[C_N], recv[C_N], global[C_N];
    int         all_done;
    double      t0, last_print;
} progress_t;

static void print_progress(const progress_t *p, int total)
{
    double t = now_s() - p->t0;
    int64_t done = p->global[C_DONE] + p->global[C_SKIPPED] + p->global[C_FAILED];
    double rate = t > 0 ? (double)done / t : 0.0;
    char eta[32] = "?";
    if (rate > 0) snprintf(eta, sizeof eta, "%.0f s", (double)(total - done) / rate);
    fprintf(stderr, "sn-resize: %lld/%d images (%.0f%%), %.1f images/s, ETA %s\n", (long long)done, total,
            total ? 100.0 * (double)done / total : 100.0, rate, eta);
}

/* One step of the progress exchange; only the thread that initialised MPI calls it.
 * local: this rank's counters, with C_FINISHED = 1 once all its threads are done. */
static void progress_poll(progress_t *p, const int64_t local[C_N], const opts_t *o, int total,
                          atomic_int *stop)
{
    if (p->all_done) return;
    if (g_size == 1) {
        memcpy(p->global, local, sizeof p->global);
        p->all_done = local[C_FINISHED] == 1;
    } else {
        if (p->req != MPI_REQUEST_NULL) {
            int flag = 0;
            MPI_Test(&p->req, &flag, MPI_STATUS_IGNORE);
            if (!flag) return;
            memcpy(p->global, p->recv, sizeof p->global);
            /* Every rank sees the same sums, so every rank stops after the same reduction. */
            p->all_done = p->recv[C_FINISHED] == g_size;
        }
        if (!p->all_done) {
            memcpy(p->send, local, sizeof p->send);
            MPI_Iallreduce(p->send, p->recv, C_N, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, &p->req);
        }
    }
    if (p->global[C_FAILED] > 0) atomic_store(stop, 1);
    double t = now_s();
    if (g_rank == 0 && o->progress >= 0.0 && !p->all_done && t - p->last_print >= o->progress) {
        print_progress(p, total);
        p->last_print = t;
    }
}

/* Resizes one image; returns 0, 1 when the image was unreadable, -1 when writing failed. */
static int resize_one(const opts_t *o, const char *name, uint8_t *buf)
{
    char src[PATH_MAX], dst[PATH_MAX];
    if ((size_t)snprintf(src, sizeof src, "%s/%s", o->in, name) >= sizeof src ||
        (size_t)snprintf(dst, sizeof dst, "%s/%s", o->out, name) >= sizeof dst) {
        SN_FAIL(SN_EINVAL, "%s/%s: path too long", o->in, name);
        return 1;
    }
    dp_image_info_t info;
    if (dp_image_load_resized_hwc(src, o->size, o->fast_decode, buf, &info) != 0) return 1;
    int rc = info.format == DP_IMAGE_PNG ? dp_image_save_png(dst, buf, o->size, o->size)
                                         : dp_image_save_jpeg(dst, buf, o->size, o->size, 75);
    return rc == 0 ? 0 : -1;
}

static void report(const char *what, const char *msg)
{
    if (g_size > 1) fprintf(stderr, "sn-resize: rank %d: %s%s\n", g_rank, what, msg);
    else fprintf(stderr, "sn-resize: %s%s\n", what, msg);
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    opts_t o;
    int prc = parse_args(argc, argv, &o);
    if (prc != 0) {
        MPI_Finalize();
        return prc == 1 ? 0 : 2;
    }
    if (provided < MPI_THREAD_FUNNELED && g_rank == 0)
        fprintf(stderr, "sn-resize: warning: MPI gives thread level %d < FUNNELED\n", provided);

    int threads = o.threads;
    if (threads == 0) {
        if (getenv("OMP_NUM_THREADS")) {
            threads = omp_get_max_threads();
        } else {
            MPI_Comm node;
            int local = 1;
            MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
            MPI_Comm_size(node, &local);
            MPI_Comm_free(&node);
            threads = omp_get_num_procs() / local;
            if (threads < 1) threads = 1;
        }
    }

    job_t job = {0};
    int list_rc = 0;
    if (g_rank == 0) {
        list_rc = list_images(&o, &job);
        if (list_rc != 0) fprintf(stderr, "sn-resize: %s\n", sn_error_message());
        else if (job.count == 0) {
            fprintf(stderr, "sn-resize: no .jpg, .jpeg or .png files in %s\n", o.in);
            list_rc = SN_EINVAL;
        }
    }
    if (share_job(&job, list_rc) != 0) {
        job_free(&job);
        MPI_Finalize();
        return 1;
    }
    int n_mine = 0;
    int *mine = my_images(&job, &n_mine);
    if (!mine) {
        fprintf(stderr, "sn-resize: rank %d: out of memory dealing %d images\n", g_rank, job.count);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    atomic_int next = 0, stop = 0, threads_done = 0;
    atomic_llong n_done = 0, n_skipped = 0, n_failed = 0;
    progress_t prog = {.req = MPI_REQUEST_NULL};
    prog.t0 = prog.last_print = now_s();

#pragma omp parallel num_threads(threads)
    {
        const int is_main = omp_get_thread_num() == 0;
        const int team = omp_get_num_threads();
        uint8_t *buf = malloc((size_t)o.size * o.size * 3);
        if (!buf) {
            report("", "out of memory for an image buffer; this thread stops");
            atomic_fetch_add(&n_failed, 1);
        }
        int64_t local[C_N];
        for (;;) {
            int k = buf && !atomic_load(&stop) ? atomic_fetch_add(&next, 1) : n_mine;
            if (k < n_mine) {
                const char *name = job.names + job.offset[mine[k]];
                int r = resize_one(&o, name, buf);
                if (r == 0) {
                    atomic_fetch_add(&n_done, 1);
                } else if (r < 0) {
                    report("error: ", sn_error_message());
                    atomic_fetch_add(&n_failed, 1);
                    atomic_store(&stop, 1);
                } else if (o.strict) {
                    report("error: ", sn_error_message());
                    atomic_fetch_add(&n_failed, 1);
                    atomic_store(&stop, 1);
                } else {
                    report("skipping: ", sn_error_message());
                    atomic_fetch_add(&n_skipped, 1);
                }
            } else if (!is_main) {
                break;
            }
            if (!is_main) continue;
            /* The main thread works like the others and, between images and after its
             * last one, keeps the progress exchange going until every rank is done. */
            /* threads_done first: a thread counts its images before it counts itself
             * done, so the counters read after it are final when it says all are done. */
            int others_done = atomic_load(&threads_done) == team - 1;
            local[C_DONE] = atomic_load(&n_done);
            local[C_SKIPPED] = atomic_load(&n_skipped);
            local[C_FAILED] = atomic_load(&n_failed);
            local[C_FINISHED] = k >= n_mine && others_done;
            progress_poll(&prog, local, &o, job.count, &stop);
            if (prog.all_done) break;
            if (k >= n_mine) usleep(1000);
        }
        free(buf);
        if (!is_main) atomic_fetch_add(&threads_done, 1);
    }

    double secs = now_s() - prog.t0;
    int64_t *g = prog.global;
    int rc = g[C_FAILED] > 0 ? 1 : 0;
    if (g_rank == 0) {
        int64_t not_done = job.count - g[C_DONE] - g[C_SKIPPED] - g[C_FAILED];
        printf("sn-resize: resized %lld of %d images to %dx%d in %.2f s (%.1f images/s, %d rank%s x %d thread%s%s)",
               (long long)g[C_DONE], job.count, o.size, o.size, secs, secs > 0 ? (double)g[C_DONE] / secs : 0.0,
               g_size, g_size > 1 ? "s" : "", threads, threads > 1 ? "s" : "", o.fast_decode ? ", fast decode" : "");
        printf(", skipped %lld unreadable", (long long)g[C_SKIPPED]);
        if (g[C_FAILED] > 0) printf(", %lld failed, %lld not attempted", (long long)g[C_FAILED], (long long)not_done);
        printf("\n");
        fflush(stdout);
    }
    free(mine);
    job_free(&job);
    MPI_Finalize();
    return rc;
}
