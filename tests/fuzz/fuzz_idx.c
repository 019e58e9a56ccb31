/*
 * fuzz_idx.c: libFuzzer harness for the IDX parser of sn-mnist-prep (data-prep/idx.c).
 * The first input byte picks images or labels; the rest is the file. A parse that
 * succeeds must describe bytes inside the buffer: every payload byte is read (AddressSanitizer
 * checks the bounds) and labels are range-checked as the tool does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "idx.h"
#include "shardnet/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int want = data[0] & 1 ? DP_IDX_IMAGES_MAGIC : DP_IDX_LABELS_MAGIC;
    /* a copy of exactly the file's bytes, so that reading past its end is caught */
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return 0;
    for (size_t i = 0; i < len; i++) buf[i] = data[i + 1];
    dp_idx_t idx;
    if (dp_idx_parse("fuzz.idx", buf, len, want, &idx) == SN_OK) {
        size_t n = (size_t)idx.count * (size_t)idx.rows * (size_t)idx.cols;
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < n; i++) sink ^= idx.data[i];
        if (want == DP_IDX_LABELS_MAGIC) (void)dp_idx_check_labels("fuzz.idx", &idx, 10);
    }
    free(buf);
    return 0;
}
