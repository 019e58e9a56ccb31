/*
 * dist.h: everything MPI, behind a small interface (callers never include mpi.h).
 *
 * One process per rank; each rank holds a full replica of the model. Gradients are
 * summed across ranks in place; parameters are broadcast from rank 0 at start; a
 * cheap hash compares replicas. Any fatal error on one rank ends every rank through
 * sn_dist_fail (MPI_Abort), so no rank waits forever in a collective.
 */
#ifndef SHARDNET_DIST_H
#define SHARDNET_DIST_H
#include <stddef.h>
#include <stdint.h>

int  sn_dist_init(int *argc, char ***argv);
void sn_dist_finalize(void);
int  sn_dist_rank(void);
int  sn_dist_size(void);
int  sn_dist_local_size(void);     /* ranks on this node */
int  sn_dist_initialized(void);

int  sn_dist_allreduce_sum_f32(float *buf, size_t n);
int  sn_dist_allreduce_sum_f64(double *buf, size_t n);
int  sn_dist_allreduce_sum_i64(int64_t *buf, size_t n);
/* The gradient allreduce of one training step, with a stall watchdog: every rank tells
 * rank 0 that it reached step `step` (a small message), then all sum buf (non-blocking,
 * polled). If the collective does not complete within timeout_s seconds (0: wait forever),
 * the job ends with SN_ESTALL after a message naming the ranks that never reached
 * the step (rank 0) or the step that did not complete (other ranks). */
int  sn_dist_allreduce_step(float *buf, size_t n, int64_t step, double timeout_s);
int  sn_dist_allreduce_max_f64(double *buf, size_t n);
int  sn_dist_bcast_f32(float *buf, size_t n, int root);
int  sn_dist_bcast_f64(double *buf, size_t n, int root);
int  sn_dist_barrier(void);

/* Every rank passes its status; returns the first non-zero status in rank order (0 if
 * all succeeded), so all ranks take the same branch after a local failure. */
int  sn_dist_agree(int status);

/* Compares a 64-bit value across ranks; a mismatch is SN_EMPI naming the first rank
 * that differs from rank 0 and `what`. */
int  sn_dist_check_same(uint64_t value, const char *what);

/* Prints "shardnet[rank r]: message" to stderr and ends the job: MPI_Abort when more
 * than one rank runs, exit otherwise. */
_Noreturn void sn_dist_fail(int status, const char *message);

/* Threads per rank that fill this rank's CPU set without oversubscribing the node. */
int  sn_dist_default_threads(void);
/* CPUs this process may run on (its affinity mask; the online CPUs if unknown). */
int  sn_dist_bound_cpus(void);

double sn_dist_wtime(void);

#endif
