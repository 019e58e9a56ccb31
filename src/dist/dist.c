/*
 * dist.c: the MPI side of data parallelism. MPI errors return codes (MPI_ERRORS_RETURN)
 * that become SN_EMPI with the MPI error string; fatal paths end in MPI_Abort.
 * Must not know about layers, files or the training loop.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <mpi.h>
#include "shardnet/dist.h"
#include "shardnet/error.h"

static int g_rank = 0, g_size = 1, g_local_size = 1, g_inited = 0, g_we_inited = 0;
static int g_failed_elsewhere = 0;   /* sn_dist_agree reported another rank's failure */

static int mpi_check(int rc, const char *what, const char *file, int line)
{
    if (rc == MPI_SUCCESS) return SN_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return sn_error_set(SN_EMPI, file, line, "%s failed: %s", what, msg);
}
#define MPI_TRY(call) SN_TRY(mpi_check((call), #call, __FILE__, __LINE__))

int sn_dist_init(int *argc, char ***argv)
{
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag) {
        int provided;
        MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
        g_we_inited = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    MPI_TRY(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node));
    MPI_Comm_size(node, &g_local_size);
    MPI_Comm_free(&node);
    g_inited = 1;
    return SN_OK;
}

void sn_dist_finalize(void)
{
    if (g_inited && g_we_inited) MPI_Finalize();
    g_inited = 0;
}

int sn_dist_rank(void) { return g_rank; }
int sn_dist_size(void) { return g_size; }
int sn_dist_local_size(void) { return g_local_size; }
int sn_dist_initialized(void) { return g_inited; }

int sn_dist_allreduce_sum_f32(float *buf, size_t n)
{
    if (g_size == 1) return SN_OK;
    /* in chunks: MPI counts are int */
    for (size_t off = 0; off < n; off += (size_t)1 << 30) {
        int cnt = (int)(n - off < ((size_t)1 << 30) ? n - off : ((size_t)1 << 30));
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
    return SN_OK;
}

int sn_dist_allreduce_sum_f64(double *buf, size_t n)
{
    if (g_size == 1) return SN_OK;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    return SN_OK;
}

#define TAG_ARRIVED 4711

static void sleep_briefly(void)
{
    struct timespec ts = {0, 20000};   /* 20 us: polls stay cheap without spinning a core */
    nanosleep(&ts, NULL);
}

int sn_dist_allreduce_step(float *buf, size_t n, int64_t step, double timeout_s)
{
    if (g_size == 1) return SN_OK;
    if (n > (size_t)1 << 30) return sn_dist_allreduce_sum_f32(buf, n);
    static int64_t *arrived;                 /* rank 0: the step each rank announced */
    static MPI_Request *reqs;
    if (!reqs) {
        reqs = calloc((size_t)g_size + 1, sizeof *reqs);
        arrived = calloc((size_t)g_size, sizeof *arrived);
        if (!reqs || !arrived) return SN_FAIL(SN_ENOMEM, "allreduce watchdog: out of memory");
    }
    int nreq = 0;
    int64_t mine = step;
    if (g_rank == 0) {
        for (int r = 1; r < g_size; r++)
            MPI_TRY(MPI_Irecv(&arrived[r], 1, MPI_INT64_T, r, TAG_ARRIVED, MPI_COMM_WORLD, &reqs[nreq++]));
    } else {
        MPI_TRY(MPI_Isend(&mine, 1, MPI_INT64_T, 0, TAG_ARRIVED, MPI_COMM_WORLD, &reqs[nreq++]));
    }
    MPI_TRY(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &reqs[nreq++]));
    double start = MPI_Wtime();
    for (long polls = 0;; polls++) {
        int done = 0;
        MPI_TRY(MPI_Testall(nreq, reqs, &done, MPI_STATUSES_IGNORE));
        if (done) break;
        if (timeout_s > 0 && MPI_Wtime() - start > timeout_s) {
            char late[256] = "";
            if (g_rank == 0) {
                for (int r = 1, k = 0; r < g_size && k < 16; r++) {
                    int got = 0;
                    MPI_Test(&reqs[r - 1], &got, MPI_STATUS_IGNORE);
                    if (!got) {
                        snprintf(late + strlen(late), sizeof late - strlen(late), "%s%d", k++ ? ", " : "", r);
                    }
                }
                if (!late[0])
                    return SN_FAIL(SN_ESTALL, "stall: every rank reached step %lld, but its gradient allreduce did "
                                   "not complete within %.0f s (a rank stopped inside it, or a link failed)",
                                   (long long)step, timeout_s);
                return SN_FAIL(SN_ESTALL, "stall: rank%s %s did not reach the gradient allreduce of step %lld "
                               "within %.0f s", strchr(late, ',') ? "s" : "", late, (long long)step, timeout_s);
            }
            return SN_FAIL(SN_ESTALL, "stall: the gradient allreduce of step %lld did not complete within "
                           "%.0f s (another rank is late or gone)", (long long)step, timeout_s);
        }
        if (polls > 1000) sleep_briefly();   /* a long wait: stop burning the core */
    }
    if (g_rank == 0)
        for (int r = 1; r < g_size; r++)
            if (arrived[r] != step)
                return SN_FAIL(SN_EMPI, "rank %d is at step %lld, rank 0 at %lld: ranks out of step",
                               r, (long long)arrived[r], (long long)step);
    return SN_OK;
}

int sn_dist_allreduce_max_f64(double *buf, size_t n)
{
    if (g_size == 1) return SN_OK;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    return SN_OK;
}

int sn_dist_allreduce_sum_i64(int64_t *buf, size_t n)
{
    if (g_size == 1) return SN_OK;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
    return SN_OK;
}

int sn_dist_bcast_f32(float *buf, size_t n, int root)
{
    if (g_size == 1) return SN_OK;
    MPI_TRY(MPI_Bcast(buf, (int)n, MPI_FLOAT, root, MPI_COMM_WORLD));
    return SN_OK;
}

int sn_dist_bcast_f64(double *buf, size_t n, int root)
{
    if (g_size == 1) return SN_OK;
    MPI_TRY(MPI_Bcast(buf, (int)n, MPI_DOUBLE, root, MPI_COMM_WORLD));
    return SN_OK;
}

int sn_dist_barrier(void)
{
    if (g_size == 1) return SN_OK;
    MPI_TRY(MPI_Barrier(MPI_COMM_WORLD));
    return SN_OK;
}

int sn_dist_agree(int status)
{
    if (g_size == 1) return status;
    /* the first failing rank wins: encode (rank, status) so the minimum picks it */
    /* MINLOC over (value, index) pairs: the value is the failing rank (g_size if fine) */
    int mine[2] = {status ? g_rank : g_size, status};
    if (MPI_Allreduce(MPI_IN_PLACE, mine, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD) != MPI_SUCCESS)
        return SN_FAIL(SN_EMPI, "MPI_Allreduce failed while ranks compared their status");
    if (mine[0] == g_size) return SN_OK;
    if (!status) {
        g_failed_elsewhere = 1;
        return SN_FAIL(SN_EMPI, "rank %d failed (see its message)", mine[0]);
    }
    return status;
}

int sn_dist_check_same(uint64_t value, const char *what)
{
    if (g_size == 1) return SN_OK;
    uint64_t *all = malloc((size_t)g_size * sizeof *all);
    if (!all) return SN_FAIL(SN_ENOMEM, "check_same: out of memory");
    int rc = mpi_check(MPI_Allgather(&value, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD),
                       "MPI_Allgather", __FILE__, __LINE__);
    for (int r = 1; !rc && r < g_size; r++)
        if (all[r] != all[0])
            rc = SN_FAIL(SN_EMPI, "%s differ across ranks: rank %d has %016llx, rank 0 has %016llx",
                         what, r, (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    return rc;
}

_Noreturn void sn_dist_fail(int status, const char *message)
{
    (void)status;   /* the message says what went wrong; the exit status is always 1 */
    if (g_size > 1)
        fprintf(stderr, "shardnet[rank %d of %d]: error: %s\n", g_rank, g_size, message);
    else
        fprintf(stderr, "shardnet: error: %s\n", message);
    fflush(stderr);
    /* a rank that only heard of another's failure gives that rank time to print its own
     * message and abort first: whichever rank aborts first may kill the others mid-print */
    if (g_inited && g_size > 1 && g_failed_elsewhere) sleep(2);
    if (g_inited && g_size > 1) MPI_Abort(MPI_COMM_WORLD, 1);   /* exit status 1: an error (3 and 4 mean other things) */
    if (g_inited) MPI_Finalize();
    exit(1);
}

int sn_dist_bound_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

int sn_dist_default_threads(void)
{
    int cpus = sn_dist_bound_cpus();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    /* An unbound rank sees every CPU of the node: share them among the node's ranks. */
    if (online > 0 && cpus >= online && g_local_size > 1) cpus = cpus / g_local_size;
    return cpus < 1 ? 1 : cpus;
}

double sn_dist_wtime(void) { return MPI_Wtime(); }
