/*
 * idx.c: IDX header and length validation on a memory buffer (see idx.h).
 */
#include "idx.h"
#include "shardnet/error.h"

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int dp_idx_parse(const char *path, const uint8_t *buf, size_t len, int want_magic, dp_idx_t *out)
{
    int images = want_magic == DP_IDX_IMAGES_MAGIC;
    size_t header = images ? 16 : 8;
    out->count = 0;
    out->rows = out->cols = 1;
    out->data = NULL;
    if (len < header) return SN_FAIL(SN_EFORMAT, "%s: %zu bytes, shorter than the %zu-byte IDX header", path, len, header);
    uint32_t magic = be32(buf);
    if (magic != (uint32_t)want_magic)
        return SN_FAIL(SN_EFORMAT, "%s: magic number %u, expected %d (%s file)", path, magic, want_magic,
                       images ? "an images" : "a labels");
    uint32_t count = be32(buf + 4);
    if (images) {
        uint32_t rows = be32(buf + 8), cols = be32(buf + 12);
        if (rows != 28 || cols != 28)
            return SN_FAIL(SN_EFORMAT, "%s: images are %ux%u, expected 28x28", path, rows, cols);
        out->rows = out->cols = 28;
    }
    if (count < 1) return SN_FAIL(SN_EFORMAT, "%s: header says 0 items", path);
    /* count < 2^32 and rows*cols = 784: the product fits in 64 bits */
    uint64_t want = (uint64_t)header + (uint64_t)count * (uint64_t)(out->rows * out->cols);
    if ((uint64_t)len != want)
        return SN_FAIL(SN_EFORMAT, "%s: %zu bytes, expected %llu for %lu items (truncated or padded file)", path, len,
                       (unsigned long long)want, (unsigned long)count);
    out->count = count;
    out->data = buf + header;
    return SN_OK;
}

int dp_idx_check_labels(const char *path, const dp_idx_t *labels, int num_classes)
{
    for (int64_t i = 0; i < labels->count; i++)
        if (labels->data[i] >= num_classes)
            return SN_FAIL(SN_ERANGE, "%s: label %u of item %lld outside 0..%d", path, labels->data[i], (long long)i,
                           num_classes - 1);
    return SN_OK;
}
