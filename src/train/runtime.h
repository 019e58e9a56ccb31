/*
 * runtime.h: what every training loop of src/train shares: progress lines, the stop
 * signals (SIGTERM/SIGINT/SIGUSR1 -> checkpoint and stop), resident memory, the JSON-lines
 * metrics text kept for checkpoints, and the fault injection of the failure tests.
 */
#ifndef SHARDNET_TRAIN_RUNTIME_H
#define SHARDNET_TRAIN_RUNTIME_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
