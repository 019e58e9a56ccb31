/*
 * runtime.c: the shared pieces of the training loops (runtime.h).
 * Must not: call MPI collectives other than the step's (sn_step_sync, sn_step_log_check),
 * which every rank calls once per step; callers reduce anything else themselves.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include "shardnet/dist.h"
#include "shardnet/rng.h"
#include "shardnet/train.h"
#include "train/runtime.h"

void sn_progress_show(sn_progress_t *p, int epoch, int64_t step, int64_t steps, double loss, double samples_per_s)
{
    if (p->mode == SN_PROGRESS_NONE) return;
    if (p->bar) {
        int width = 30, done = (int)(width * step / steps);
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < done ? '=' : (i == done ? '>' : ' ');
        bar[width] = '\0';
        fprintf(stderr, "\repoch %d [%s] %3d%% %lld/%lld  loss %.4f  %.0f samples/s ", epoch, bar,
                (int)(100 * step / steps), (long long)step, (long long)steps, loss, samples_per_s);
        if (step == steps) fputc('\n', stderr);
        fflush(stderr);
    } else {
        printf("Train epoch %d: %lld/%lld steps (%.0f%%)  loss %.6f  %.0f samples/s\n", epoch, (long long)step,
               (long long)steps, 100.0 * step / steps, loss, samples_per_s);
        fflush(stdout);
    }
}

/* ---- signals -------------------------------------------------------------------------- */

volatile sig_atomic_t sn_stop_signal;

static void on_stop_signal(int sig) { sn_stop_signal = sig; }

void sn_catch_stop_signals(sn_saved_signals_t *saved)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sn_stop_signal = 0;
    sigaction(SIGTERM, &sa, &saved->term);
    sigaction(SIGINT, &sa, &saved->intr);
    sigaction(SIGUSR1, &sa, &saved->usr1);
}

void sn_restore_signals(const sn_saved_signals_t *saved)
{
    sigaction(SIGTERM, &saved->term, NULL);
    sigaction(SIGINT, &saved->intr, NULL);
    sigaction(SIGUSR1, &saved->usr1, NULL);
}


/* Resident memory of this process now, in MB (from /proc; 0 where unavailable). */
double sn_rss_now_mb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0.0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

double sn_peak_rss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0.0;   /* KiB on Linux */
}

void sn_text_append(sn_text_t *t, const char *line)
{
    size_t n = strlen(line);
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap + n + 1) * 2;
        char *grown = realloc(t->text, cap);
        if (!grown) return;
        t->text = grown;
        t->cap = cap;
    }
    memcpy(t->text + t->len, line, n + 1);
    t->len += n;
}

void sn_text_free(sn_text_t *t)
{
    free(t->text);
    memset(t, 0, sizeof *t);
}

void sn_epoch_loss_begin(sn_epoch_loss_t *l, int64_t steps, const double *start)
{
    memset(l, 0, sizeof *l);
    if (start) {
        l->epoch[0] = start[0];
        l->epoch[1] = start[1];
    }
    l->interval = steps / 100 > 0 ? steps / 100 : 1;
}

void sn_epoch_loss_add(sn_epoch_loss_t *l, sn_progress_t *p, int epoch, int64_t s, int64_t steps, double sum,
                       double count, double samples, double t_epoch)
{
    l->run[0] += sum;
    l->run[1] += count;
    if ((s + 1) % l->interval != 0 && s + 1 != steps) return;
    l->epoch[0] += l->run[0];
    l->epoch[1] += l->run[1];
    if (p->bar || (s + 1) % (l->interval * 10) == 0 || s + 1 == steps)
        sn_progress_show(p, epoch, s + 1, steps, l->run[0] / l->run[1], samples / (sn_dist_wtime() - t_epoch));
    l->run[0] = l->run[1] = 0.0;
}

void sn_epoch_loss_part(const sn_epoch_loss_t *l, double part[2])
{
    part[0] = l->epoch[0] + l->run[0];
    part[1] = l->epoch[1] + l->run[1];
}

void sn_report_stop(int64_t step, const char *checkpoint)
{
    printf("shardnet: stop requested by a signal: stopped after step %lld%s%s\n", (long long)step,
           checkpoint ? ", checkpoint written to " : " (no --checkpoint given: nothing saved)",
           checkpoint ? checkpoint : "");
    fflush(stdout);
}

/* Fault injection for the failure tests: SHARDNET_FAULT="stall:RANK:STEP" makes that rank
 * stop making progress before that step (it sleeps until killed). */
void sn_maybe_inject_fault(int rank, int64_t step)
{
    static int parsed, fault_rank = -1;
    static long long fault_step = -1;
    if (!parsed) {
        const char *f = getenv("SHARDNET_FAULT");
        parsed = 1;
        if (f && sscanf(f, "stall:%d:%lld", &fault_rank, &fault_step) != 2) fault_rank = -1;
    }
    if (rank == fault_rank && step == fault_step) {
        fprintf(stderr, "shardnet[rank %d]: SHARDNET_FAULT: stalling before step %lld\n", rank, (long long)step);
        for (;;) pause();
    }
}

/* ---- run outputs and epoch order -------------------------------------------------- */

int sn_open_run_outputs(int rank, const char *metrics_path, const char *earlier, const char *loss_log_path,
                        int resume, FILE **metrics, FILE **loss_log)
{
    *metrics = *loss_log = NULL;
    if (rank != 0) return SN_OK;
    if (metrics_path) {
        if (!(*metrics = fopen(metrics_path, "w")))
            return SN_FAIL(SN_EIO, "%s: cannot write the metrics file", metrics_path);
        if (earlier) fputs(earlier, *metrics);   /* the epochs before the resume */
    }
    if (loss_log_path && !(*loss_log = fopen(loss_log_path, resume ? "a" : "w")))
        return SN_FAIL(SN_EIO, "%s: cannot write the loss log", loss_log_path);
    return SN_OK;
}

void sn_epoch_order(int64_t *perm, int64_t n, int shuffle, int global, uint64_t seed, int epoch, int rank)
{
    if (!shuffle) for (int64_t i = 0; i < n; i++) perm[i] = i;
    else if (global) sn_rng_permutation(perm, n, seed, SN_RNG_SHUFFLE, (uint64_t)epoch, 0);
    else sn_rng_permutation(perm, n, seed, SN_RNG_SHUFFLE, (uint64_t)epoch, 1 + (uint64_t)rank);
}

/* ---- the step's synchronisation ------------------------------------------------------ */

int sn_step_sync(float *grads, size_t n_train, double loss, double count, int lrc, int normalise, int64_t step,
                 int epoch, double stall_timeout, const char *checkpoint, sn_step_sums_t *sums)
{
    float *side = grads + n_train;
    side[SN_SLOT_LOSS] = (float)loss;
    side[SN_SLOT_COUNT] = (float)count;
    side[SN_SLOT_ERROR] = lrc != 0;
    side[SN_SLOT_STOP] = sn_stop_signal != 0;
    side[SN_SLOT_NONFINITE] = !isfinite(loss);
    int rc = sn_dist_allreduce_step(grads, n_train + SN_PARAMS_SIDE_SLOTS, step, stall_timeout);
    if (rc == SN_ESTALL) sn_dist_fail(rc, sn_error_message());   /* the others cannot be asked */
    if (rc) return rc;
    if (side[SN_SLOT_ERROR] > 0.0f)
        return lrc ? lrc : SN_FAIL(SN_EMPI, "step %lld failed on another rank", (long long)step);
    sums->loss = side[SN_SLOT_LOSS];
    sums->count = side[SN_SLOT_COUNT];
    sums->stop = side[SN_SLOT_STOP] > 0.0f;
    const float inv = normalise ? (float)(1.0 / sums->count) : 1.0f;
    double gsum = 0.0;
    #pragma omp parallel for reduction(+ : gsum) schedule(static)
    for (size_t i = 0; i < n_train; i++) {
        if (normalise) grads[i] *= inv;
        gsum += grads[i];
    }
    if (side[SN_SLOT_NONFINITE] > 0.0f || !isfinite(gsum))
        return SN_FAIL(SN_ENUMERIC, "%s at step %lld (epoch %d): training stopped%s",
                       side[SN_SLOT_NONFINITE] > 0.0f ? "non-finite loss" : "non-finite gradient", (long long)step + 1,
                       epoch, checkpoint ? "; the last checkpoint is kept" : "");
    return 0;
}

int sn_step_log_check(FILE *log, int64_t step, double mean_loss, int check_every, const sn_params_t *params)
{
    if (log) {
        fprintf(log, "%lld %.9g\n", (long long)step, mean_loss);
        fflush(log);
    }
    if (check_every > 0 && step % check_every == 0) return sn_dist_check_same(sn_params_hash(params), "parameters");
    return 0;
}
