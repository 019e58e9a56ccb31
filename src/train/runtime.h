/*
 * runtime.h: what every training loop of src/train shares: progress lines, the stop
 * signals (SIGTERM/SIGINT/SIGUSR1 -> checkpoint and stop), resident memory, the JSON-lines
 * metrics text kept for checkpoints, the fault injection of the failure tests, and the
 * synchronising middle of a training step (the gradient allreduce and what travels with it).
 */
#ifndef SHARDNET_TRAIN_RUNTIME_H
#define SHARDNET_TRAIN_RUNTIME_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "shardnet/params.h"

typedef struct {
    int mode;   /* SN_PROGRESS_NONE, _LINES, or a bar (AUTO on a terminal) */
    int bar;
} sn_progress_t;

/* One progress report of rank 0: a bar on a terminal, else a line on stdout. */
void sn_progress_show(sn_progress_t *p, int epoch, int64_t step, int64_t steps, double loss, double samples_per_s);

/* The loss of the epoch in progress: each step adds its (sum, count) to a running part,
 * folded into the epoch's every `interval` steps (1% of the epoch), when a progress
 * report is shown (every interval on a bar, every 10 intervals as lines, and at the end). */
typedef struct { double run[2], epoch[2]; int64_t interval; } sn_epoch_loss_t;
/* start: the (sum, count) of a resumed epoch's earlier steps, or NULL. */
void sn_epoch_loss_begin(sn_epoch_loss_t *l, int64_t steps, const double *start);
/* After step s (0-based) of steps: samples done so far and the epoch's start time, for
 * the samples/s of the report. */
void sn_epoch_loss_add(sn_epoch_loss_t *l, sn_progress_t *p, int epoch, int64_t s, int64_t steps, double sum,
                       double count, double samples, double t_epoch);
/* The epoch so far: part = epoch + running (sum, count). */
void sn_epoch_loss_part(const sn_epoch_loss_t *l, double part[2]);
/* Rank 0's line when a signal stopped the run after `step`. */
void sn_report_stop(int64_t step, const char *checkpoint);

/* The last stop signal received (0: none); set by the handlers of sn_catch_stop_signals. */
extern volatile sig_atomic_t sn_stop_signal;
typedef struct { struct sigaction term, intr, usr1; } sn_saved_signals_t;
void sn_catch_stop_signals(sn_saved_signals_t *saved);
void sn_restore_signals(const sn_saved_signals_t *saved);

/* Resident memory now, and the peak so far, in MB (0 where unavailable). */
double sn_rss_now_mb(void);
double sn_peak_rss_mb(void);

/* A growing text (the metrics lines of finished epochs). On allocation failure the line
 * is dropped: the metrics file still has it, only a checkpoint would miss it. */
typedef struct { char *text; size_t len, cap; } sn_text_t;
void sn_text_append(sn_text_t *t, const char *line);
void sn_text_free(sn_text_t *t);

/* SHARDNET_FAULT="stall:RANK:STEP": that rank stops making progress before that step
 * (sleeps until killed). For the failure tests. */
void sn_maybe_inject_fault(int rank, int64_t step);

/* Rank 0's run outputs (other ranks: *metrics = *loss_log = NULL). The metrics file is
 * rewritten with the lines of the epochs before a resume (earlier: may be NULL); the loss
 * log is appended to on a resume. Either path may be NULL (not asked for). */
int sn_open_run_outputs(int rank, const char *metrics_path, const char *earlier, const char *loss_log_path,
                        int resume, FILE **metrics, FILE **loss_log);

/* The order of this rank's n rows in an epoch: identity without shuffling, one permutation
 * of all rows shared by every rank (global), or one of the rank's own rows. */
void sn_epoch_order(int64_t *perm, int64_t n, int shuffle, int global, uint64_t seed, int epoch, int rank);

/* Side slots of the gradient allreduce (SN_PARAMS_SIDE_SLOTS): the step's status travels
 * with its gradients, so no extra collective is needed to agree on it. */
enum { SN_SLOT_LOSS, SN_SLOT_COUNT, SN_SLOT_ERROR, SN_SLOT_STOP, SN_SLOT_NONFINITE };

typedef struct {
    double loss;    /* the loss summed over ranks */
    double count;   /* what it sums over (samples, tokens), summed over ranks */
    int    stop;    /* a stop signal reached some rank */
} sn_step_sums_t;

/* One training step's synchronisation, alike for every model. This rank's loss, count,
 * result (lrc: its forward/backward) and pending stop signal join the allreduce of grads
 * (n_train gradients, then the side slots), so a rank that failed still takes part and
 * nobody waits for it. Then a failure anywhere, a non-finite loss or a non-finite summed
 * gradient give every rank the same error; a stalled peer ends the job (MPI_Abort).
 * normalise: divide the summed gradients by the summed count (a mean over the global
 * batch's tokens, when ranks hold different numbers). epoch and checkpoint (may be NULL)
 * only word the message. */
int sn_step_sync(float *grads, size_t n_train, double loss, double count, int lrc, int normalise, int64_t step,
                 int epoch, double stall_timeout, const char *checkpoint, sn_step_sums_t *sums);

/* After a step's update: rank 0's loss-log line (flushed: people and tests follow it
 * while the run goes on; log may be NULL), and every check_every steps the check that
 * all ranks hold the same parameters. */
int sn_step_log_check(FILE *log, int64_t step, double mean_loss, int check_every, const sn_params_t *params);

#endif
