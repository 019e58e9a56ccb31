/*
 * args.c: option values of the shardnet command, checked with a message naming the option.
 * Must not: exit; the callers print the usage and choose the status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/train.h"
#include "args.h"

int sn_cli_parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "shardnet: %s expects an integer in %ld..%ld, got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int sn_cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "shardnet: %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int sn_cli_parse_progress(const char *s)
{
    if (strcmp(s, "auto") == 0) return SN_PROGRESS_AUTO;
    if (strcmp(s, "lines") == 0) return SN_PROGRESS_LINES;
    if (strcmp(s, "none") == 0) return SN_PROGRESS_NONE;
    fprintf(stderr, "shardnet: --progress expects auto, lines or none, got '%s'\n", s);
    return -1;
}
