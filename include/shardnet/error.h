/*
 * error.h: status codes and the last-error message of the calling thread.
 *
 * Library functions return 0 on success or a negative SN_E* code; the function that
 * detects a failure records a message with file:line context through SN_FAIL. Callers
 * propagate the code (SN_TRY) and the CLI prints sn_error_message() once. Nothing in the
 * library exits the process; only the CLI and dist/ (MPI_Abort) end it.
 */
#ifndef SHARDNET_ERROR_H
#define SHARDNET_ERROR_H
#include <stddef.h>

enum {
    SN_OK       = 0,
    SN_EINVAL   = -1,  /* bad argument or bad user input */
    SN_ENOMEM   = -2,  /* allocation failed */
    SN_EIO      = -3,  /* file system or stdio failure */
    SN_EFORMAT  = -4,  /* a file's content is not what was expected */
    SN_EMPI     = -5,  /* an MPI call failed or ranks disagree */
    SN_ERANGE   = -6,  /* a value outside its valid range (labels, ids) */
    SN_ENUMERIC = -7,  /* NaN or Inf where a finite value was needed */
    SN_ESTALL   = -8,  /* a rank stopped making progress */
};

/* Records "file:line: message" for the calling thread and returns code. */
int sn_error_set(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *sn_error_message(void);
const char *sn_error_name(int code);
void sn_error_clear(void);

#define SN_FAIL(code, ...) sn_error_set((code), __FILE__, __LINE__, __VA_ARGS__)

/* Propagates a non-zero status. */
#define SN_TRY(expr)                 \
    do {                             \
        int sn_rc_ = (expr);         \
        if (sn_rc_ != 0) return sn_rc_; \
    } while (0)

/* Allocation helpers: 64-byte aligned, zeroed; NULL sets SN_ENOMEM's message. */
void *sn_alloc(size_t bytes, const char *what);
void  sn_free(void *p);

#endif
