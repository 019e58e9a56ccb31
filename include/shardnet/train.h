/*
 * train.h: the data-parallel training loop (the one place where a step is assembled:
 * data -> forward -> loss -> backward -> allreduce -> optimizer) and evaluation.
 *
 * Semantics: the global batch of a step is the union of the ranks' local batches
 * (rank r takes batch/P, the first batch%P ranks one more). Gradients are of the mean
 * loss over the global batch: each rank scales its per-sample gradients by 1/batch, the
 * allreduce sums them. Every rank runs the same number of steps per epoch:
 * min over ranks of floor(shard rows / local batch); the rows left over are not used in
 * that epoch (a different set each epoch, since shards are reshuffled).
 *
 * Every step's gradient allreduce also carries each rank's loss, error flag and stop
 * request, so all ranks leave the loop at the same step: on an error anywhere (with the
 * failing rank named), on a non-finite loss or gradient, or on SIGTERM/SIGINT/SIGUSR1 at
 * any rank (then a checkpoint is written and the run ends with stopped_by_signal set).
 * A resumed run continues bit for bit: the data order and dropout masks are functions of
 * (seed, epoch, step, sample), and the checkpoint holds weights and optimizer state.
 */
#ifndef SHARDNET_TRAIN_H
#define SHARDNET_TRAIN_H
#include <stdint.h>
#include "shardnet/model.h"

enum { SN_PROGRESS_NONE = 0, SN_PROGRESS_AUTO = 1, SN_PROGRESS_LINES = 2 };

typedef struct sn_train_config {
    const char *data;              /* HDF5 file with /train and /test */
    int         epochs;
    int         batch;             /* global batch */
    float       lr, rho, eps, weight_decay;
    uint64_t    seed;
    int         threads;           /* per rank; 0: fill this rank's CPUs */
    int         shuffle;           /* 0: file order */
    int         global_shuffle;    /* every rank slices one global permutation */
    int         dropout;           /* 0: dropout layers are identity */
    const char *init;              /* parameters to start from (checkpoint layout) */
    int64_t     max_steps;         /* stop after this many optimizer steps (0: no limit) */
    const char *metrics;           /* JSON lines, one per epoch (rank 0) */
    const char *loss_log;          /* per-step loss, "step loss" lines (rank 0) */
    const char *save;              /* final parameters + optimizer state */
    int         check_every;       /* compare parameter hashes across ranks every N steps */
    int         progress;          /* SN_PROGRESS_* */
    int64_t     train_limit;       /* use only the first N training rows (0: all) */
    int64_t     test_limit;        /* evaluate on the first N test rows (0: all) */
    double      min_accuracy;      /* fail (exit status 3) if the final accuracy is lower */
    const char *checkpoint;        /* checkpoint file (rank 0 writes it; temp + rename) */
    int64_t     checkpoint_every;  /* steps between checkpoints (0: only at the end and on signals) */
    const char *resume;            /* continue the run stored in this checkpoint */
    double      stall_timeout;     /* seconds a rank may wait for the others in a step (0: forever) */
} sn_train_config_t;

typedef struct sn_train_result {
    int64_t  steps;
    double   train_loss;                    /* mean over the last epoch's samples */
    double   test_loss, test_accuracy;      /* after the last epoch */
    int64_t  correct, test_total;
    double   seconds;                       /* training time, evaluation excluded */
    double   samples_per_s;
    double   t_data, t_forward, t_backward, t_allreduce, t_optim;   /* rank 0, seconds */
    uint64_t params_hash;
    double   peak_rss_mb;                   /* largest peak resident memory of any rank */
    int      stopped_by_signal;             /* SIGTERM/SIGINT/SIGUSR1 ended the run early */
    int      checkpoint_written;
} sn_train_result_t;

void sn_train_defaults(sn_train_config_t *c);
/* Sets the OpenMP/BLAS threads of this rank (0: fill the rank's CPUs); returns the count.
 * Rank 0 warns (once) when it was given more threads than the CPUs it is bound to. */
int  sn_train_set_threads(int requested);
/* OpenBLAS's kernel family, and a better one when it fell back to generic kernels (or NULL).
 * OPENBLAS_CORETYPE is read when the library loads, so a program re-executes itself to
 * apply it (the shardnet CLI does, unless OPENBLAS_CORETYPE is already set). */
const char *sn_blas_core(void);
const char *sn_blas_better_core(void);
/* Trains the MNIST ConvNet on c->data; fills r on every rank. */
int  sn_train_mnist(const sn_train_config_t *c, sn_train_result_t *r);
/* Evaluates a model on /split of path (sharded across ranks, results reduced). */
int  sn_evaluate(sn_model_t *m, const char *path, const char *split, int64_t limit,
                 double *avg_loss, int64_t *correct, int64_t *total);

#endif
