/*
 * idx.h: parsing MNIST's IDX format from memory (the header and length checks of
 * sn-mnist-prep, kept apart so that tests/fuzz/fuzz_idx.c can feed it arbitrary bytes).
 *
 * Images (magic 2051): 16-byte header (magic, count, rows, cols, big-endian u32) then
 * count*rows*cols bytes; only 28x28 is accepted. Labels (magic 2049): 8-byte header
 * (magic, count) then count bytes.
 */
#ifndef SHARDNET_DP_IDX_H
#define SHARDNET_DP_IDX_H
#include <stddef.h>
#include <stdint.h>

#define DP_IDX_IMAGES_MAGIC 2051
#define DP_IDX_LABELS_MAGIC 2049

typedef struct {
    int64_t        count;   /* items */
    int            rows, cols;
    const uint8_t *data;    /* the payload after the header, inside the parsed buffer */
} dp_idx_t;

/* Validates buf[0..len) as an IDX file of want_magic (magic, dimensions, exact length) and
 * fills out. Errors are SN_EFORMAT with a message that names path. */
int dp_idx_parse(const char *path, const uint8_t *buf, size_t len, int want_magic, dp_idx_t *out);

/* Every label of a parsed labels file lies in 0..num_classes-1 (SN_ERANGE naming the item). */
int dp_idx_check_labels(const char *path, const dp_idx_t *labels, int num_classes);

#endif
