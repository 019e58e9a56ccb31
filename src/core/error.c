/*
 * error.c: per-thread last-error message and aligned allocation.
 * Must not print or exit: reporting is the caller's business.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/error.h"

static _Thread_local char last_message[1024];

/* Formats into a scratch buffer first: the arguments may be the previous message
 * (SN_FAIL(rc, "%s: %s", path, sn_error_message()) wraps it with context). */
int sn_error_set(int code, const char *file, int line, const char *fmt, ...)
{
    char msg[sizeof last_message];
    const char *base = strrchr(file, '/');
    int n = snprintf(msg, sizeof msg, "%s:%d: ", base ? base + 1 : file, line);
    if (n < 0 || (size_t)n >= sizeof msg) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    memcpy(last_message, msg, sizeof msg);
    return code;
}

const char *sn_error_message(void) { return last_message[0] ? last_message : "no error recorded"; }
void sn_error_clear(void) { last_message[0] = '\0'; }

const char *sn_error_name(int code)
{
    switch (code) {
    case SN_OK:       return "ok";
    case SN_EINVAL:   return "invalid argument";
    case SN_ENOMEM:   return "out of memory";
    case SN_EIO:      return "i/o error";
    case SN_EFORMAT:  return "bad file format";
    case SN_EMPI:     return "MPI error";
    case SN_ERANGE:   return "value out of range";
    case SN_ENUMERIC: return "non-finite value";
    case SN_ESTALL:   return "stalled rank";
    default:          return "unknown error";
    }
}

void *sn_alloc(size_t bytes, const char *what)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        sn_error_set(SN_ENOMEM, __FILE__, __LINE__, "cannot allocate %zu bytes for %s", bytes, what);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void sn_free(void *p) { free(p); }
