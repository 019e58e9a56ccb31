/*
 * main.c: the `shardnet` command: train, eval. Parses flags, starts MPI, and turns a
 * library error into one message and a non-zero exit on every rank (MPI_Abort when
 * several ranks run, so none is left waiting).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "shardnet/checkpoint.h"
#include "shardnet/dist.h"
#include "shardnet/error.h"
#include "shardnet/train.h"
#include "args.h"
#include "caption_cmd.h"

#define EXIT_BELOW_ACCURACY 3
#define EXIT_STOPPED 4          /* a signal stopped the run after a checkpoint */

static void usage_main(FILE *f)
{
    fprintf(f,
        "usage: shardnet <command> [options]      (under mpirun for several ranks)\n"
        "\n"
        "commands:\n"
        "  train     train the MNIST ConvNet, data-parallel over MPI ranks\n"
        "            (--model caption: the image-captioning model)\n"
        "  eval      evaluate saved parameters on the test set (--model caption: BLEU)\n"
        "  caption   print greedy captions of image files\n"
        "  --version print the version\n"
        "\n"
        "`shardnet <command> --help` lists a command's options.\n");
}

static void usage_train(FILE *f)
{
    fprintf(f,
        "usage: [mpirun -np P] shardnet train --data mnist.h5 [options]\n"
        "\n"
        "Trains the MNIST ConvNet (conv 1-16-32, maxpool, dropout 0.1, fc 4608-64, dropout 0.25,\n"
        "fc 64-10, log-softmax) with NLL loss and Adadelta. Each rank reads its shard of /train;\n"
        "gradients are summed across ranks before every step, so all ranks hold the same weights.\n"
        "\n"
        "data and model:\n"
        "  --model NAME         mnist (this text) or caption (`shardnet train --model caption --help`)\n"
        "  --data FILE          HDF5 file from sn-mnist-prep (/train, /test)          [required]\n"
        "  --init FILE          start from the parameters in FILE (a --save/checkpoint file, or\n"
        "                       any HDF5 file with /params/<name> float datasets, e.g.\n"
        "                       /params/conv1.weight [16,1,3,3], as in PyTorch's state_dict)\n"
        "  --train-limit N      use only the first N training rows                    [all]\n"
        "  --test-limit N       evaluate on the first N test rows                     [all]\n"
        "optimisation:\n"
        "  --epochs N           epochs                                                [2]\n"
        "  --batch N            global batch, split over the ranks                    [32]\n"
        "  --lr X               Adadelta learning rate                                [0.5]\n"
        "  --rho X              Adadelta rho                                          [0.9]\n"
        "  --eps X              Adadelta eps                                          [1e-6]\n"
        "  --weight-decay X     L2 weight decay                                       [0]\n"
        "  --seed N             seed of initialisation, shuffles and dropout masks    [0]\n"
        "  --max-steps N        stop after N optimizer steps                          [none]\n"
        "  --no-shuffle         samples in file order\n"
        "  --global-shuffle     every rank takes its slice of one global permutation (each\n"
        "                       rank loads the whole training set); results then do not\n"
        "                       depend on the number of ranks, up to summation order\n"
        "  --no-dropout         dropout layers become the identity\n"
        "parallelism:\n"
        "  --threads N          OpenMP threads per rank [OMP_NUM_THREADS, else the rank's\n"
        "                       CPUs shared among the ranks of the node]\n"
        "checkpoints and failures:\n"
        "  --checkpoint FILE    write a checkpoint here (rank 0, temporary name + rename): at the\n"
        "                       end, every --checkpoint-every steps, and when SIGTERM, SIGINT or\n"
        "                       SIGUSR1 arrives (every rank then finishes the step, the run exits 4)\n"
        "  --checkpoint-every N steps between checkpoints                           [0: none]\n"
        "  --resume FILE        continue the run saved in FILE: same weights, optimizer state,\n"
        "                       epoch and step; the result equals a run done in one go, bit for\n"
        "                       bit, with the same ranks x threads (other rank counts continue from\n"
        "                       the same step; with --global-shuffle they see the same samples)\n"
        "  --stall-timeout S    a rank that waits more than S s for the others in a step ends the\n"
        "                       job, naming the ranks that did not arrive (0: wait forever)  [30]\n"
        "output:\n"
        "  --save FILE          write the final parameters and optimizer state (HDF5)\n"
        "  --metrics FILE       one JSON line per epoch (loss, accuracy, time, samples/s)\n"
        "  --loss-log FILE      'step loss' per optimizer step (global batch mean)\n"
        "  --check-every N      compare parameter hashes across ranks every N steps  [200]\n"
        "  --progress MODE      auto (a bar on a terminal, lines otherwise), lines, none [auto]\n"
        "  --min-accuracy X     exit with status 3 if the final test accuracy is below X\n"
        "\n"
        "exit status: 0 success, 1 error, 2 bad usage, 3 accuracy below --min-accuracy,\n"
        "             4 stopped by a signal (checkpoint written if --checkpoint was given)\n");
}

static void usage_eval(FILE *f)
{
    fprintf(f,
        "usage: [mpirun -np P] shardnet eval --data mnist.h5 --checkpoint FILE [--test-limit N]\n"
        "                                    [--threads N] [--split test]\n"
        "\n"
        "Evaluates the MNIST ConvNet with the parameters in FILE on /SPLIT of the data file;\n"
        "prints the average loss and the accuracy.\n");
}

enum {
    O_DATA = 256, O_INIT, O_TRAIN_LIMIT, O_TEST_LIMIT, O_EPOCHS, O_BATCH, O_LR, O_RHO, O_EPS, O_WD, O_SEED,
    O_MAX_STEPS, O_NO_SHUFFLE, O_GLOBAL_SHUFFLE, O_NO_DROPOUT, O_THREADS, O_SAVE, O_METRICS, O_LOSS_LOG,
    O_CHECK_EVERY, O_PROGRESS, O_MIN_ACC, O_CHECKPOINT, O_SPLIT, O_HELP, O_CKPT_EVERY, O_RESUME, O_STALL, O_MODEL
};

static const struct option train_opts[] = {
    {"data", required_argument, 0, O_DATA}, {"init", required_argument, 0, O_INIT},
    {"train-limit", required_argument, 0, O_TRAIN_LIMIT}, {"test-limit", required_argument, 0, O_TEST_LIMIT},
    {"epochs", required_argument, 0, O_EPOCHS}, {"batch", required_argument, 0, O_BATCH},
    {"lr", required_argument, 0, O_LR}, {"rho", required_argument, 0, O_RHO}, {"eps", required_argument, 0, O_EPS},
    {"weight-decay", required_argument, 0, O_WD}, {"seed", required_argument, 0, O_SEED},
    {"max-steps", required_argument, 0, O_MAX_STEPS}, {"no-shuffle", no_argument, 0, O_NO_SHUFFLE},
    {"global-shuffle", no_argument, 0, O_GLOBAL_SHUFFLE}, {"no-dropout", no_argument, 0, O_NO_DROPOUT},
    {"threads", required_argument, 0, O_THREADS}, {"save", required_argument, 0, O_SAVE},
    {"metrics", required_argument, 0, O_METRICS}, {"loss-log", required_argument, 0, O_LOSS_LOG},
    {"check-every", required_argument, 0, O_CHECK_EVERY}, {"progress", required_argument, 0, O_PROGRESS},
    {"min-accuracy", required_argument, 0, O_MIN_ACC}, {"checkpoint", required_argument, 0, O_CHECKPOINT},
    {"split", required_argument, 0, O_SPLIT}, {"help", no_argument, 0, O_HELP},
    {"checkpoint-every", required_argument, 0, O_CKPT_EVERY}, {"resume", required_argument, 0, O_RESUME},
    {"stall-timeout", required_argument, 0, O_STALL}, {"model", required_argument, 0, O_MODEL}, {0, 0, 0, 0}};

/* Parses the options shared by train and eval. Returns 0, 1 for --help, -1 on bad usage. */
static int parse(int argc, char **argv, sn_train_config_t *c, const char **checkpoint, const char **split)
{
    long v;
    double d;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", train_opts, NULL)) != -1) {
        switch (o) {
        case O_DATA: c->data = optarg; break;
        case O_INIT: c->init = optarg; break;
        case O_TRAIN_LIMIT: if (sn_cli_parse_long("--train-limit", optarg, 1, 1L << 40, &v)) return -1; c->train_limit = v; break;
        case O_TEST_LIMIT: if (sn_cli_parse_long("--test-limit", optarg, 1, 1L << 40, &v)) return -1; c->test_limit = v; break;
        case O_EPOCHS: if (sn_cli_parse_long("--epochs", optarg, 1, 100000, &v)) return -1; c->epochs = (int)v; break;
        case O_BATCH: if (sn_cli_parse_long("--batch", optarg, 1, 1 << 20, &v)) return -1; c->batch = (int)v; break;
        case O_LR: if (sn_cli_parse_double("--lr", optarg, 0, 1e6, &d)) return -1; c->lr = (float)d; break;
        case O_RHO: if (sn_cli_parse_double("--rho", optarg, 0, 1, &d)) return -1; c->rho = (float)d; break;
        case O_EPS: if (sn_cli_parse_double("--eps", optarg, 0, 1, &d)) return -1; c->eps = (float)d; break;
        case O_WD: if (sn_cli_parse_double("--weight-decay", optarg, 0, 1e6, &d)) return -1; c->weight_decay = (float)d; break;
        case O_SEED: if (sn_cli_parse_long("--seed", optarg, 0, 1L << 62, &v)) return -1; c->seed = (uint64_t)v; break;
        case O_MAX_STEPS: if (sn_cli_parse_long("--max-steps", optarg, 1, 1L << 50, &v)) return -1; c->max_steps = v; break;
        case O_NO_SHUFFLE: c->shuffle = 0; break;
        case O_GLOBAL_SHUFFLE: c->global_shuffle = 1; break;
        case O_NO_DROPOUT: c->dropout = 0; break;
        case O_THREADS: if (sn_cli_parse_long("--threads", optarg, 1, 1024, &v)) return -1; c->threads = (int)v; break;
        case O_SAVE: c->save = optarg; break;
        case O_METRICS: c->metrics = optarg; break;
        case O_LOSS_LOG: c->loss_log = optarg; break;
        case O_CHECK_EVERY: if (sn_cli_parse_long("--check-every", optarg, 0, 1L << 40, &v)) return -1; c->check_every = (int)v; break;
        case O_PROGRESS: if ((c->progress = sn_cli_parse_progress(optarg)) < 0) return -1; break;
        case O_MIN_ACC: if (sn_cli_parse_double("--min-accuracy", optarg, 0, 1, &d)) return -1; c->min_accuracy = d; break;
        case O_CHECKPOINT: *checkpoint = optarg; c->checkpoint = optarg; break;
        case O_CKPT_EVERY: if (sn_cli_parse_long("--checkpoint-every", optarg, 0, 1L << 50, &v)) return -1; c->checkpoint_every = v; break;
        case O_RESUME: c->resume = optarg; break;
        case O_STALL: if (sn_cli_parse_double("--stall-timeout", optarg, 0, 1e9, &d)) return -1; c->stall_timeout = d; break;
        case O_SPLIT: *split = optarg; break;
        case O_MODEL:   /* caption is dispatched before parsing */
            if (strcmp(optarg, "mnist") != 0) {
                fprintf(stderr, "shardnet: --model expects mnist or caption, got '%s'\n", optarg);
                return -1;
            }
            break;
        case 'h': case O_HELP: return 1;
        default: return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "shardnet: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!c->data) {
        fprintf(stderr, "shardnet: --data FILE is required\n");
        return -1;
    }
    return 0;
}

static int cmd_eval(const sn_train_config_t *c, const char *checkpoint, const char *split)
{
    if (!checkpoint) return SN_FAIL(SN_EINVAL, "eval needs --checkpoint FILE");
    sn_train_set_threads(c->threads);
    sn_model_t m;
    int rc = sn_mnist_convnet_new(&m, 256, 0.0f, 0.0f);
    if (!rc && sn_dist_rank() == 0) rc = sn_checkpoint_load(checkpoint, &m.params, NULL, NULL);
    rc = sn_dist_agree(rc);
    if (!rc) rc = sn_dist_bcast_f32(m.params.values, m.params.total, 0);
    double loss;
    int64_t correct, total;
    if (!rc) rc = sn_evaluate(&m, c->data, split, c->test_limit, &loss, &correct, &total);
    if (!rc && sn_dist_rank() == 0)
        printf("Test set: Average loss: %.4f, Accuracy: %lld/%lld (%.2f%%)\n", loss, (long long)correct,
               (long long)total, 100.0 * correct / total);
    sn_model_free(&m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("shardnet %s\n", SHARDNET_VERSION);
        return 0;
    }
    const char *cmd = argv[1];
    int is_train = strcmp(cmd, "train") == 0, is_eval = strcmp(cmd, "eval") == 0;
    int is_caption = strcmp(cmd, "caption") == 0;
    if (!is_train && !is_eval && !is_caption) {
        fprintf(stderr, "shardnet: unknown command '%s'\n", cmd);
        usage_main(stderr);
        return 2;
    }
    /* OpenBLAS chooses its kernels when it loads: if it fell back to generic ones on a CPU
     * with AVX2/AVX-512, run again with OPENBLAS_CORETYPE naming the right family. A value
     * the user set is always kept. */
    const char *better = getenv("OPENBLAS_CORETYPE") ? NULL : sn_blas_better_core();
    if (better && setenv("OPENBLAS_CORETYPE", better, 1) == 0) {
        execv("/proc/self/exe", argv);
        unsetenv("OPENBLAS_CORETYPE");   /* exec failed: carry on with the generic kernels */
    }
    for (int i = 2; i < argc && !is_caption; i++)
        if ((strcmp(argv[i], "--model") == 0 && i + 1 < argc && strcmp(argv[i + 1], "caption") == 0) ||
            strcmp(argv[i], "--model=caption") == 0)
            is_caption = 1;
    if (is_caption) return sn_cli_caption_main(cmd, argc - 1, argv + 1);
    sn_train_config_t c;
    sn_train_defaults(&c);
    const char *checkpoint = NULL, *split = "test";
    int p = parse(argc - 1, argv + 1, &c, &checkpoint, &split);
    if (p != 0) {
        (is_train ? usage_train : usage_eval)(p > 0 ? stdout : stderr);
        return p > 0 ? 0 : 2;
    }
    const char *env = getenv("OMP_NUM_THREADS");
    if (c.threads == 0 && env && atoi(env) > 0) c.threads = atoi(env);

    int rc = sn_dist_init(&argc, &argv);
    if (rc) sn_dist_fail(rc, sn_error_message());
    if (is_train) {
        sn_train_result_t r;
        rc = sn_train_mnist(&c, &r);
        if (!rc && sn_dist_rank() == 0)
            printf("shardnet: done: %lld steps in %.1f s (%.0f samples/s), test accuracy %.2f%%, "
                   "peak memory per rank %.0f MB\n"
                   "shardnet: time per phase (rank 0): data %.1f s, forward %.1f s, backward %.1f s, "
                   "allreduce %.1f s, optimizer %.1f s\n",
                   (long long)r.steps, r.seconds, r.samples_per_s, 100.0 * r.test_accuracy, r.peak_rss_mb, r.t_data,
                   r.t_forward, r.t_backward, r.t_allreduce, r.t_optim);
        if (!rc && r.stopped_by_signal) {
            sn_dist_finalize();
            return EXIT_STOPPED;
        }
        if (rc == SN_ENUMERIC && c.min_accuracy > 0 && r.test_total > 0 && r.test_accuracy < c.min_accuracy) {
            if (sn_dist_rank() == 0) fprintf(stderr, "shardnet: %s\n", sn_error_message());
            sn_dist_finalize();
            return EXIT_BELOW_ACCURACY;
        }
    } else {
        rc = cmd_eval(&c, checkpoint, split);
    }
    if (rc) sn_dist_fail(rc, sn_error_message());
    sn_dist_finalize();
    return 0;
}
