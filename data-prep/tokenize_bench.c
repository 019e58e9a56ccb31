/*
 * tokenize_bench.c: sn-tokenize-bench, single-thread throughput of dp_tokenize() over the
 * captions of a COCO captions JSON (a benchmark, not a test; compare with
 * tests/bench_nltk_tokenize.py, both run by jobs/bench-tokenize.sh).
 *   sn-tokenize-bench FILE.json [repeats]
 * Must not write files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "coco_json.h"
#include "shardnet/error.h"
#include "tokenize.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: sn-tokenize-bench FILE.json [repeats]\n"
                "Tokenizes every caption of FILE.json repeats times (default 5) on one thread and\n"
                "prints the best captions/s.\n");
        return argc < 2 || argc > 3 ? 2 : 0;
    }
    int repeats = argc == 3 ? atoi(argv[2]) : 5;
    if (repeats < 1) {
        fprintf(stderr, "sn-tokenize-bench: repeats must be >= 1, got '%s'\n", argv[2]);
        return 2;
    }
    dp_coco_t coco;
    if (dp_coco_load(argv[1], NULL, &coco) != 0) {
        fprintf(stderr, "sn-tokenize-bench: %s\n", sn_error_message());
        return 1;
    }
    dp_tokens_t t;
    dp_tokens_init(&t);
    double best = 1e30;
    long long tokens = 0;
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        tokens = 0;
        for (int64_t i = 0; i < coco.n_captions; i++) {
            if (dp_tokenize(coco.captions[i].caption, &t) != 0) {
                fprintf(stderr, "sn-tokenize-bench: %s: caption id %lld: %s\n", argv[1],
                        (long long)coco.captions[i].id, sn_error_message());
                return 1;
            }
            tokens += t.n;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("C dp_tokenize: %lld captions, %lld tokens, best of %d: %.4f s, %.0f captions/s\n",
           (long long)coco.n_captions, tokens, repeats, best, (double)coco.n_captions / best);
    dp_tokens_free(&t);
    dp_coco_free(&coco);
    return 0;
}
