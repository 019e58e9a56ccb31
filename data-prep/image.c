/*
 * image.c: JPEG (libjpeg-turbo) and PNG (libpng) decoding to RGB, PIL-compatible Lanczos
 * resizing, and JPEG / PNG writing through a temporary file.
 *
 * Parity with PIL (Pillow's ImagingResample, 8-bit path): the filter is
 * sinc(x) sinc(x/3) on [-3, 3), widened by the scale factor when downscaling; each output
 * pixel's weights are normalised in double, rounded to 22-bit fixed point; a horizontal
 * pass then a vertical pass, each rounding and clipping to 8 bits; a pass whose size does
 * not change is skipped. The decoder is the same libjpeg with the same defaults PIL uses,
 * so the default mode reproduces PIL's pixels. Integer sums are exact, so the order of
 * the multiply-adds is free and chosen for speed.
 *
 * Rows stream from the decoder through the horizontal pass (8 rows at a time) into a
 * ring of as many rows as the vertical kernel is long plus 8, so a call holds a few
 * decoded rows, the ring and the kernels, never the whole image.
 *
 * Must not: keep state between calls (the pack tool calls this from many threads),
 * print, exit, or leave a file under its final name unless it was written completely.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include "shardnet/error.h"
#include "image.h"

#define DP_PRECISION_BITS 22 /* PIL: 32 - 8 bits of result - 2 bits of headroom */
#define DP_LANCZOS_SUPPORT 3.0

const char *dp_image_format_name(int format)
{
    switch (format) {
    case DP_IMAGE_JPEG: return "JPEG";
    case DP_IMAGE_PNG:  return "PNG";
    default:            return "unknown";
    }
}

/* ---- Lanczos kernels ----------------------------------------------------------------- */

typedef struct dp_kernel {
    int      out_size, ksize;
    int     *first;  /* (out_size) first input index of each output */
    int     *count;  /* (out_size) number of inputs */
    int32_t *coef;   /* (out_size, ksize) fixed-point weights */
} dp_kernel_t;

static double dp_sinc(double x)
{
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double dp_lanczos3(double x)
{
    if (-3.0 <= x && x < 3.0) return dp_sinc(x) * dp_sinc(x / 3.0);
    return 0.0;
}

static void dp_kernel_free(dp_kernel_t *k)
{
    free(k->first);
    free(k->count);
    free(k->coef);
    memset(k, 0, sizeof *k);
}

/* Weights that map in_size samples to out_size, PIL's way. */
static int dp_kernel_build(dp_kernel_t *k, int in_size, int out_size)
{
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = DP_LANCZOS_SUPPORT * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    k->out_size = out_size;
    k->ksize = ksize;
    k->first = malloc((size_t)out_size * sizeof *k->first);
    k->count = malloc((size_t)out_size * sizeof *k->count);
    k->coef = malloc((size_t)out_size * (size_t)ksize * sizeof *k->coef);
    double *w = malloc((size_t)ksize * sizeof *w);
    if (!k->first || !k->count || !k->coef || !w) {
        free(w);
        dp_kernel_free(k);
        return SN_FAIL(SN_ENOMEM, "cannot allocate a %d-tap resampling kernel for %d outputs",
                       ksize, out_size);
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        int n = xmax - xmin;
        double ww = 0.0;
        for (int x = 0; x < n; x++) {
            w[x] = dp_lanczos3((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *c = k->coef + (size_t)xx * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < n && ww != 0.0 ? w[x] / ww : 0.0;
            v *= (double)(1 << DP_PRECISION_BITS);
            c[x] = (int32_t)(v >= 0.0 ? v + 0.5 : v - 0.5);
        }
        k->first[xx] = xmin;
        k->count[xx] = n;
    }
    free(w);
    return 0;
}

/* ---- the streaming resampler ------------------------------------------------------- */

/* The horizontal pass runs on DP_BLOCK rows at once, stored transposed (one vector per
 * input sample holds that sample of DP_BLOCK consecutive rows), so every multiply-add
 * works on DP_BLOCK lanes with contiguous loads. */
#define DP_BLOCK 8
typedef int32_t dp_v8i __attribute__((vector_size(DP_BLOCK * sizeof(int32_t))));
typedef uint8_t dp_v8u __attribute__((vector_size(DP_BLOCK)));

/* Zero-extends 8 bytes to 8 int32 lanes (GCC's generic conversion goes byte by byte). */
static inline dp_v8i dp_widen(const dp_v8u *p)
{
#if defined(__AVX2__)
    return (dp_v8i)_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
#else
    return __builtin_convertvector(*p, dp_v8i);
#endif
}

enum { DP_LAYOUT_RAW, DP_LAYOUT_HWC3, DP_LAYOUT_CHW3 };

typedef struct dp_resampler {
    int         in_w, in_h, out_w, out_h, C;
    int         do_h, do_v;
    dp_kernel_t kh, kv;
    uint8_t    *stage;      /* (DP_BLOCK, in_w * C) rows as received, until the block is full */
    dp_v8u     *block;      /* (in_w * C) transposed samples of up to DP_BLOCK rows */
    int         block_rows; /* rows gathered in block */
    uint8_t    *hrows;      /* (DP_BLOCK, out_w * C) block output when there is no vertical pass */
    uint8_t    *ring;       /* (ring_rows, out_w * C) rows after the horizontal pass */
    int         ring_rows;
    const uint8_t **vsrc;   /* (kv.ksize) ring rows of the output row being computed */
    uint8_t    *row_out;    /* (out_w * C) one finished row */
    int         rows_pushed, rows_in, rows_out; /* rows received, through the h pass, emitted */
    uint8_t    *dst;        /* the caller's output image */
    int         layout;
} dp_resampler_t;

static void dp_resampler_free(dp_resampler_t *r)
{
    dp_kernel_free(&r->kh);
    dp_kernel_free(&r->kv);
    free(r->stage);
    free(r->block);
    free(r->hrows);
    free(r->ring);
    free(r->vsrc);
    free(r->row_out);
    memset(r, 0, sizeof *r);
}

static int dp_resampler_init(dp_resampler_t *r, int in_w, int in_h, int C, int out_w, int out_h,
                             uint8_t *dst, int layout)
{
    memset(r, 0, sizeof *r);
    r->in_w = in_w; r->in_h = in_h; r->C = C;
    r->out_w = out_w; r->out_h = out_h;
    r->dst = dst; r->layout = layout;
    r->do_h = in_w != out_w;
    r->do_v = in_h != out_h;
    size_t len = (size_t)out_w * C;
    int rc = 0;
    if (r->do_h) {
        rc = dp_kernel_build(&r->kh, in_w, out_w);
        size_t bytes = (size_t)in_w * C * sizeof(dp_v8u);
        /* zeroed: lanes of a partial last block are read (and ignored) */
        r->block = rc ? NULL : aligned_alloc(sizeof(dp_v8u), bytes);
        if (r->block) memset(r->block, 0, bytes);
        r->stage = rc ? NULL : calloc(DP_BLOCK, (size_t)in_w * C);
        r->hrows = rc ? NULL : malloc(DP_BLOCK * len);
        if (!rc && (!r->block || !r->stage || !r->hrows))
            rc = SN_FAIL(SN_ENOMEM, "cannot allocate %d resampling rows", DP_BLOCK);
    }
    if (!rc && r->do_v) {
        rc = dp_kernel_build(&r->kv, in_h, out_h);
        r->ring_rows = r->kv.ksize + DP_BLOCK;
        r->ring = rc ? NULL : malloc((size_t)r->ring_rows * len);
        r->vsrc = rc ? NULL : malloc((size_t)r->kv.ksize * sizeof *r->vsrc);
        r->row_out = rc ? NULL : malloc(len);
        if (!rc && (!r->ring || !r->vsrc || !r->row_out))
            rc = SN_FAIL(SN_ENOMEM, "cannot allocate a %d-row resampling ring", r->ring_rows);
    }
    if (rc) dp_resampler_free(r);
    return rc;
}

static inline uint8_t dp_clip8(int32_t v)
{
    v >>= DP_PRECISION_BITS; /* arithmetic shift, like PIL's */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static inline dp_v8i dp_clip8v(dp_v8i v)
{
    v >>= DP_PRECISION_BITS;
    v &= ~(v < 0);              /* comparisons give all-ones lanes where true */
    dp_v8i big = v > 255;
    return (v & ~big) | (big & 255);
}

/* Horizontal pass of the gathered block: row r goes to dest[r] (out_w * C). */
static void dp_hpass_block(const dp_resampler_t *r, uint8_t *dest[DP_BLOCK])
{
    const dp_kernel_t *k = &r->kh;
    const int C = r->C, nrows = r->block_rows;
    const dp_v8i half = (dp_v8i){0} + (1 << (DP_PRECISION_BITS - 1));
    for (int x = 0; x < k->out_size; x++) {
        const int32_t *c = k->coef + (size_t)x * k->ksize;
        const dp_v8u *p = r->block + (size_t)k->first[x] * C;
        const int n = k->count[x];
        if (C == 3) {
            dp_v8i a0 = half, a1 = half, a2 = half;
            for (int i = 0; i < n; i++) {
                a0 += dp_widen(&p[3 * i + 0]) * c[i];
                a1 += dp_widen(&p[3 * i + 1]) * c[i];
                a2 += dp_widen(&p[3 * i + 2]) * c[i];
            }
            a0 = dp_clip8v(a0); a1 = dp_clip8v(a1); a2 = dp_clip8v(a2);
            for (int j = 0; j < nrows; j++) {
                uint8_t *d = dest[j] + 3 * x;
                d[0] = (uint8_t)a0[j]; d[1] = (uint8_t)a1[j]; d[2] = (uint8_t)a2[j];
            }
        } else {
            for (int ch = 0; ch < C; ch++) {
                dp_v8i a = half;
                for (int i = 0; i < n; i++) a += dp_widen(&p[C * i + ch]) * c[i];
                a = dp_clip8v(a);
                for (int j = 0; j < nrows; j++) dest[j][C * x + ch] = (uint8_t)a[j];
            }
        }
    }
}

/* Hands a finished output row (out_w, C) to the destination layout. */
static void dp_emit(dp_resampler_t *r, int y, const uint8_t *row)
{
    int W = r->out_w, C = r->C;
    if (r->layout == DP_LAYOUT_RAW) {
        memcpy(r->dst + (size_t)y * W * C, row, (size_t)W * C);
    } else if (r->layout == DP_LAYOUT_HWC3) {
        uint8_t *d = r->dst + (size_t)y * W * 3;
        if (C == 3) memcpy(d, row, (size_t)W * 3);
        else for (int x = 0; x < W; x++) d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = row[x];
    } else {
        size_t plane = (size_t)W * r->out_h;
        uint8_t *d = r->dst + (size_t)y * W;
        if (C == 3) {
            for (int x = 0; x < W; x++) {
                d[x] = row[3 * x];
                d[plane + x] = row[3 * x + 1];
                d[2 * plane + x] = row[3 * x + 2];
            }
        } else {
            memcpy(d, row, (size_t)W);
            memcpy(d + plane, row, (size_t)W);
            memcpy(d + 2 * plane, row, (size_t)W);
        }
    }
    r->rows_out++;
}

/* Zero-extends 8 bytes at any alignment to 8 int32 lanes. */
static inline dp_v8i dp_widen_u(const uint8_t *p)
{
    dp_v8u v;
    memcpy(&v, p, sizeof v);
    return dp_widen(&v);
}

/* Vertical pass for output row y from the ring: DP_BLOCK samples at a time, the sum kept
 * in registers over all taps (not stored and reloaded once per tap). */
static void dp_vpass(dp_resampler_t *r, int y)
{
    const size_t len = (size_t)r->out_w * r->C;
    const int32_t *c = r->kv.coef + (size_t)y * r->kv.ksize;
    const int first = r->kv.first[y], n = r->kv.count[y];
    const int32_t half = 1 << (DP_PRECISION_BITS - 1);
    for (int i = 0; i < n; i++) r->vsrc[i] = r->ring + (size_t)((first + i) % r->ring_rows) * len;
    uint8_t *restrict out = r->row_out;
    size_t j = 0;
    for (; j + DP_BLOCK <= len; j += DP_BLOCK) {
        dp_v8i a = (dp_v8i){0} + half;
        for (int i = 0; i < n; i++) a += dp_widen_u(r->vsrc[i] + j) * c[i];
        a = dp_clip8v(a);
        for (int l = 0; l < DP_BLOCK; l++) out[j + l] = (uint8_t)a[l];
    }
    for (; j < len; j++) {
        int32_t a = half;
        for (int i = 0; i < n; i++) a += r->vsrc[i][j] * c[i];
        out[j] = dp_clip8(a);
    }
    dp_emit(r, y, out);
}

/* Emits every output row whose vertical window is complete. */
static void dp_drain(dp_resampler_t *r)
{
    while (r->rows_out < r->out_h && r->kv.first[r->rows_out] + r->kv.count[r->rows_out] <= r->rows_in)
        dp_vpass(r, r->rows_out);
}

/* Transposes DP_BLOCK staged rows into one DP_BLOCK-lane vector per sample, 8 samples at
 * a time with byte / word / dword interleaves (a byte-at-a-time scatter with stride 8 cost
 * as much as the horizontal pass). Lanes past the rows received hold stale or zero bytes
 * that the pass computes and never stores.
 * block (n) of DP_BLOCK lanes, stage (DP_BLOCK, n). */
static void dp_transpose_block(dp_v8u *restrict block, const uint8_t *restrict stage, size_t n)
{
    size_t j = 0;
#if defined(__SSE2__)
    for (; j + 8 <= n; j += 8) {
        __m128i r[DP_BLOCK];
        for (int l = 0; l < DP_BLOCK; l++) r[l] = _mm_loadl_epi64((const __m128i *)(stage + l * n + j));
        __m128i a0 = _mm_unpacklo_epi8(r[0], r[1]), a1 = _mm_unpacklo_epi8(r[2], r[3]);
        __m128i a2 = _mm_unpacklo_epi8(r[4], r[5]), a3 = _mm_unpacklo_epi8(r[6], r[7]);
        __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
        __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
        _mm_storeu_si128((__m128i *)(block + j + 0), _mm_unpacklo_epi32(b0, b2));
        _mm_storeu_si128((__m128i *)(block + j + 2), _mm_unpackhi_epi32(b0, b2));
        _mm_storeu_si128((__m128i *)(block + j + 4), _mm_unpacklo_epi32(b1, b3));
        _mm_storeu_si128((__m128i *)(block + j + 6), _mm_unpackhi_epi32(b1, b3));
    }
#endif
    for (; j < n; j++)
        for (int l = 0; l < DP_BLOCK; l++) block[j][l] = stage[l * n + j];
}

static void dp_flush_block(dp_resampler_t *r)
{
    if (r->block_rows == 0) return;
    dp_transpose_block(r->block, r->stage, (size_t)r->in_w * r->C);
    uint8_t *dest[DP_BLOCK];
    size_t len = (size_t)r->out_w * r->C;
    for (int j = 0; j < r->block_rows; j++)
        dest[j] = r->do_v ? r->ring + (size_t)((r->rows_in + j) % r->ring_rows) * len
                          : r->hrows + (size_t)j * len;
    dp_hpass_block(r, dest);
    if (r->do_v) {
        r->rows_in += r->block_rows;
        dp_drain(r);
    } else {
        for (int j = 0; j < r->block_rows; j++) dp_emit(r, r->rows_in + j, dest[j]);
        r->rows_in += r->block_rows;
    }
    r->block_rows = 0;
}

/* Feeds the next input row (in_w, C). */
static void dp_resampler_push(dp_resampler_t *r, const uint8_t *row)
{
    int y = r->rows_pushed++;
    if (r->do_v && r->rows_out >= r->out_h) return; /* below the last window */
    if (!r->do_h) {
        if (!r->do_v) {
            dp_emit(r, y, row);
        } else {
            size_t len = (size_t)r->out_w * r->C;
            memcpy(r->ring + (size_t)(y % r->ring_rows) * len, row, len);
            r->rows_in++;
            dp_drain(r);
        }
        return;
    }
    const int lane = r->block_rows++;
    const size_t n = (size_t)r->in_w * r->C;
    memcpy(r->stage + lane * n, row, n);
    if (r->block_rows == DP_BLOCK) dp_flush_block(r);
}

/* Processes what is left after the last row; 0 when every output row was written. */
static int dp_resampler_finish(dp_resampler_t *r)
{
    dp_flush_block(r);
    if (r->rows_out != r->out_h)
        return SN_FAIL(SN_EFORMAT, "resampler: %d of %d input rows gave %d of %d output rows",
                       r->rows_pushed, r->in_h, r->rows_out, r->out_h);
    return 0;
}

int dp_image_resize(uint8_t *out, int out_w, int out_h, const uint8_t *in, int in_w, int in_h, int C)
{
    if (!out || !in || out_w < 1 || out_h < 1 || in_w < 1 || in_h < 1 || (C != 1 && C != 3))
        return SN_FAIL(SN_EINVAL, "dp_image_resize: bad arguments (%dx%d -> %dx%d, C=%d)",
                       in_w, in_h, out_w, out_h, C);
    dp_resampler_t r;
    SN_TRY(dp_resampler_init(&r, in_w, in_h, C, out_w, out_h, out, DP_LAYOUT_RAW));
    for (int y = 0; y < in_h; y++) dp_resampler_push(&r, in + (size_t)y * in_w * C);
    int rc = dp_resampler_finish(&r);
    dp_resampler_free(&r);
    return rc;
}

int dp_image_dct_scale(int w, int h, int S)
{
    for (int m = 1; m < 8; m++) {
        /* libjpeg's scaled size: ceil(side * m / 8) */
        long sw = ((long)w * m + 7) / 8, sh = ((long)h * m + 7) / 8;
        if (sw >= S && sh >= S) return m;
    }
    return 8;
}

/* ---- decoding ------------------------------------------------------------------------ */

typedef struct dp_jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf               jump;
    int                   truncated;
    char                  msg[JMSG_LENGTH_MAX];
} dp_jpeg_err_t;

static void dp_jpeg_error_exit(j_common_ptr cinfo)
{
    dp_jpeg_err_t *e = (dp_jpeg_err_t *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* libjpeg only warns when the data ends early and pads the image with gray; PIL refuses
 * such a file ("image file is truncated"), and so do we. Other warnings are ignored, as
 * PIL ignores them. */
static void dp_jpeg_emit(j_common_ptr cinfo, int level)
{
    dp_jpeg_err_t *e = (dp_jpeg_err_t *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        e->truncated = 1;
        cinfo->err->format_message(cinfo, e->msg);
        longjmp(e->jump, 1);
    }
}

static void dp_jpeg_quiet(j_common_ptr cinfo) { (void)cinfo; }

/* Everything a decode touches after setjmp lives here, on the heap, so that longjmp
 * leaves no indeterminate locals behind. */
typedef struct dp_decode {
    FILE                         *fp;
    const char                   *path;
    struct jpeg_decompress_struct jpg;
    dp_jpeg_err_t                 jerr;
    int                           jpg_live;
    png_structp                   png;
    png_infop                     png_info;
    char                          png_msg[256];
    uint8_t                      *row;     /* one decoded row (or the whole interlaced PNG) */
    uint8_t                      *rgb;     /* one converted row */
    uint8_t                      *data;    /* the whole JPEG file, when decoding one */
    char                          iobuf[1 << 16]; /* stdio buffer: libjpeg reads 4 KiB at a time */
    dp_resampler_t                rs;
    int                           rs_live;
} dp_decode_t;

/* PIL's Adobe CMYK ("CMYK;I": stored inverted) to RGB. */
static void dp_cmyk_to_rgb(uint8_t *rgb, const uint8_t *cmyk, int w)
{
    for (int x = 0; x < w; x++) {
        int c = 255 - cmyk[4 * x], m = 255 - cmyk[4 * x + 1], y = 255 - cmyk[4 * x + 2];
        int nk = cmyk[4 * x + 3]; /* 255 - k, with k stored inverted */
        int v[3] = {c, m, y};
        for (int i = 0; i < 3; i++) {
            int t = v[i] * nk + 128;
            int o = nk - (((t >> 8) + t) >> 8);
            rgb[3 * x + i] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
        }
    }
}

/* Reads the rest of d->fp into d->data (malloc'ed), *size bytes. */
static int dp_read_all(dp_decode_t *d, size_t *size)
{
    struct stat st;
    if (fstat(fileno(d->fp), &st) != 0)
        return SN_FAIL(SN_EIO, "%s: cannot stat: %s", d->path, strerror(errno));
    if (st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX / 2)
        return SN_FAIL(SN_EFORMAT, "%s: JPEG of %lld bytes", d->path, (long long)st.st_size);
    d->data = malloc((size_t)st.st_size);
    if (!d->data) return SN_FAIL(SN_ENOMEM, "%s: cannot hold its %lld bytes", d->path, (long long)st.st_size);
    *size = fread(d->data, 1, (size_t)st.st_size, d->fp);
    if (ferror(d->fp)) return SN_FAIL(SN_EIO, "%s: cannot read: %s", d->path, strerror(errno));
    return 0;
}

static int dp_decode_jpeg(dp_decode_t *d, int S, int fast_decode, uint8_t *dst, int layout,
                          dp_image_info_t *info)
{
    struct jpeg_decompress_struct *ci = &d->jpg;
    ci->err = jpeg_std_error(&d->jerr.pub);
    d->jerr.pub.error_exit = dp_jpeg_error_exit;
    d->jerr.pub.emit_message = dp_jpeg_emit;
    d->jerr.pub.output_message = dp_jpeg_quiet;
    if (setjmp(d->jerr.jump)) {
        return SN_FAIL(SN_EFORMAT, "%s: %s JPEG: %s", d->path,
                       d->jerr.truncated ? "truncated" : "corrupt", d->jerr.msg);
    }
    jpeg_create_decompress(ci);
    d->jpg_live = 1;
    if (dst) {
        /* The whole file in memory: libjpeg-turbo's fast Huffman path needs a full MCU's
         * worth of bytes (up to 3 KiB for 4:2:0) in the source buffer, which a 4 KiB
         * stdio source often lacks; from memory it decodes nearly every MCU on it. */
        size_t size = 0;
        SN_TRY(dp_read_all(d, &size));
        jpeg_mem_src(ci, d->data, (unsigned long)size);
    } else {
        jpeg_stdio_src(ci, d->fp);
    }
    jpeg_read_header(ci, TRUE);
    info->width = (int)ci->image_width;
    info->height = (int)ci->image_height;
    info->components = ci->num_components;
    int cmyk = 0;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE: ci->out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK:      ci->out_color_space = JCS_CMYK; cmyk = 1; break;
    default:            ci->out_color_space = JCS_RGB; break;
    }
    if (fast_decode && dst) {
        ci->scale_num = (unsigned)dp_image_dct_scale(info->width, info->height, S);
        ci->scale_denom = 8;
    }
    jpeg_calc_output_dimensions(ci);
    info->decoded_width = (int)ci->output_width;
    info->decoded_height = (int)ci->output_height;
    if (!dst) return 0; /* probe only */
    int W = (int)ci->output_width, H = (int)ci->output_height;
    int C = ci->out_color_space == JCS_GRAYSCALE ? 1 : 3;
    d->row = malloc((size_t)W * ci->output_components);
    d->rgb = cmyk ? malloc((size_t)W * 3) : NULL;
    if (!d->row || (cmyk && !d->rgb))
        return SN_FAIL(SN_ENOMEM, "%s: cannot allocate a %d-pixel row", d->path, W);
    SN_TRY(dp_resampler_init(&d->rs, W, H, C, S, S, dst, layout));
    d->rs_live = 1;
    jpeg_start_decompress(ci);
    while (ci->output_scanline < ci->output_height) {
        JSAMPROW rows[1] = {d->row};
        jpeg_read_scanlines(ci, rows, 1);
        if (cmyk) {
            dp_cmyk_to_rgb(d->rgb, d->row, W);
            dp_resampler_push(&d->rs, d->rgb);
        } else {
            dp_resampler_push(&d->rs, d->row);
        }
    }
    jpeg_finish_decompress(ci);
    return dp_resampler_finish(&d->rs);
}

static void dp_png_error(png_structp png, png_const_charp msg)
{
    dp_decode_t *d = png_get_error_ptr(png);
    snprintf(d->png_msg, sizeof d->png_msg, "%s", msg);
    png_longjmp(png, 1);
}

static void dp_png_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int dp_decode_png(dp_decode_t *d, int S, uint8_t *dst, int layout, dp_image_info_t *info)
{
    d->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, dp_png_error, dp_png_warning);
    if (!d->png) return SN_FAIL(SN_ENOMEM, "%s: cannot create a PNG reader", d->path);
    d->png_info = png_create_info_struct(d->png);
    if (!d->png_info) return SN_FAIL(SN_ENOMEM, "%s: cannot create a PNG reader", d->path);
    if (setjmp(png_jmpbuf(d->png))) {
        return SN_FAIL(SN_EFORMAT, "%s: corrupt or truncated PNG: %s", d->path, d->png_msg);
    }
    png_init_io(d->png, d->fp);
    png_read_info(d->png, d->png_info);
    png_uint_32 w = png_get_image_width(d->png, d->png_info);
    png_uint_32 h = png_get_image_height(d->png, d->png_info);
    int depth = png_get_bit_depth(d->png, d->png_info);
    int type = png_get_color_type(d->png, d->png_info);
    info->width = (int)(w > DP_IMAGE_MAX_SIDE ? DP_IMAGE_MAX_SIDE + 1 : w);
    info->height = (int)(h > DP_IMAGE_MAX_SIDE ? DP_IMAGE_MAX_SIDE + 1 : h);
    info->components = png_get_channels(d->png, d->png_info);
    info->decoded_width = info->width;
    info->decoded_height = info->height;
    if (w > DP_IMAGE_MAX_SIDE || h > DP_IMAGE_MAX_SIDE)
        return SN_FAIL(SN_EFORMAT, "%s: PNG of %ux%u pixels is larger than %d per side",
                       d->path, (unsigned)w, (unsigned)h, DP_IMAGE_MAX_SIDE);
    if (!dst) return 0;
    /* Like PIL's convert("RGB"): palettes expand, alpha and tRNS are dropped (not
     * composited), gray stays one channel until the end, 16-bit keeps the high byte. */
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(d->png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(d->png);
    if (depth == 16) png_set_strip_16(d->png);
    png_set_strip_alpha(d->png); /* also drops the alpha that a palette's tRNS may add */
    int passes = png_set_interlace_handling(d->png);
    png_read_update_info(d->png, d->png_info);
    int C = png_get_channels(d->png, d->png_info);
    size_t rowbytes = png_get_rowbytes(d->png, d->png_info);
    if ((C != 1 && C != 3) || rowbytes != (size_t)w * C)
        return SN_FAIL(SN_EFORMAT, "%s: unsupported PNG layout (color type %d, depth %d)",
                       d->path, type, depth);
    SN_TRY(dp_resampler_init(&d->rs, (int)w, (int)h, C, S, S, dst, layout));
    d->rs_live = 1;
    if (passes == 1) {
        d->row = malloc(rowbytes);
        if (!d->row) return SN_FAIL(SN_ENOMEM, "%s: cannot allocate a PNG row", d->path);
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(d->png, d->row, NULL);
            dp_resampler_push(&d->rs, d->row);
        }
    } else {
        /* Interlaced: rows are final only after the last pass. */
        d->row = malloc(rowbytes * h);
        if (!d->row) return SN_FAIL(SN_ENOMEM, "%s: cannot allocate %ux%u interlaced PNG",
                                    d->path, (unsigned)w, (unsigned)h);
        for (int p = 0; p < passes; p++)
            for (png_uint_32 y = 0; y < h; y++) png_read_row(d->png, d->row + rowbytes * y, NULL);
        for (png_uint_32 y = 0; y < h; y++) dp_resampler_push(&d->rs, d->row + rowbytes * y);
    }
    png_read_end(d->png, NULL);
    return dp_resampler_finish(&d->rs);
}

static const uint8_t DP_PNG_MAGIC[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* Opens path, recognises the format by content and decodes it into dst (probe if NULL). */
static int dp_load(const char *path, int S, int fast_decode, uint8_t *dst, int layout,
                   dp_image_info_t *info_out)
{
    dp_image_info_t info_local;
    dp_image_info_t *info = info_out ? info_out : &info_local;
    memset(info, 0, sizeof *info);
    if (!path) return SN_FAIL(SN_EINVAL, "dp_image: NULL path");
    if (dst && (S < 1 || S > DP_IMAGE_MAX_SIDE))
        return SN_FAIL(SN_EINVAL, "%s: output size %d out of range 1..%d", path, S, DP_IMAGE_MAX_SIDE);
    dp_decode_t *d = calloc(1, sizeof *d);
    if (!d) return SN_FAIL(SN_ENOMEM, "%s: cannot allocate a decoder", path);
    d->path = path;
    int rc;
    d->fp = fopen(path, "rb");
    if (!d->fp) {
        rc = SN_FAIL(SN_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    setvbuf(d->fp, d->iobuf, _IOFBF, sizeof d->iobuf);
    uint8_t magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, d->fp);
    if (ferror(d->fp)) {
        rc = SN_FAIL(SN_EIO, "%s: cannot read: %s", path, strerror(errno));
        goto done;
    }
    rewind(d->fp);
    if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) {
        info->format = DP_IMAGE_JPEG;
        rc = dp_decode_jpeg(d, S, fast_decode, dst, layout, info);
    } else if (got == 8 && memcmp(magic, DP_PNG_MAGIC, 8) == 0) {
        info->format = DP_IMAGE_PNG;
        rc = dp_decode_png(d, S, dst, layout, info);
    } else if (got == 0) {
        rc = SN_FAIL(SN_EFORMAT, "%s: empty file, not an image", path);
    } else {
        rc = SN_FAIL(SN_EFORMAT, "%s: not a JPEG or PNG file (starts with bytes %02x %02x %02x %02x)",
                     path, magic[0], magic[1], magic[2], magic[3]);
    }
done:
    if (d->jpg_live) jpeg_destroy_decompress(&d->jpg);
    if (d->png) png_destroy_read_struct(&d->png, d->png_info ? &d->png_info : NULL, NULL);
    if (d->rs_live) dp_resampler_free(&d->rs);
    free(d->row);
    free(d->rgb);
    free(d->data);
    if (d->fp) fclose(d->fp);
    free(d);
    return rc;
}

int dp_image_load_resized(const char *path, int S, int fast_decode, uint8_t *out_chw)
{
    if (!out_chw) return SN_FAIL(SN_EINVAL, "%s: NULL output buffer", path ? path : "(null)");
    return dp_load(path, S, fast_decode, out_chw, DP_LAYOUT_CHW3, NULL);
}

int dp_image_load_resized_hwc(const char *path, int S, int fast_decode, uint8_t *out_hwc,
                              dp_image_info_t *info)
{
    if (!out_hwc) return SN_FAIL(SN_EINVAL, "%s: NULL output buffer", path ? path : "(null)");
    return dp_load(path, S, fast_decode, out_hwc, DP_LAYOUT_HWC3, info);
}

int dp_image_probe(const char *path, dp_image_info_t *info)
{
    return dp_load(path, 0, 0, NULL, DP_LAYOUT_RAW, info);
}

/* ---- writing ------------------------------------------------------------------------- */

static atomic_uint dp_tmp_counter;

/* A temporary name next to path: same folder, so that rename() is atomic. */
static void dp_tmp_name(char *buf, size_t n, const char *path)
{
    const char *slash = strrchr(path, '/');
    unsigned id = atomic_fetch_add(&dp_tmp_counter, 1u);
    if (slash)
        snprintf(buf, n, "%.*s/.%s.tmp-%ld-%u", (int)(slash - path), path, slash + 1, (long)getpid(), id);
    else
        snprintf(buf, n, ".%s.tmp-%ld-%u", path, (long)getpid(), id);
}

typedef struct dp_jpeg_cerr {
    struct jpeg_error_mgr pub;
    jmp_buf               jump;
    char                  msg[JMSG_LENGTH_MAX];
} dp_jpeg_cerr_t;

static void dp_jpeg_cerror_exit(j_common_ptr cinfo)
{
    dp_jpeg_cerr_t *e = (dp_jpeg_cerr_t *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

typedef struct dp_encode {
    FILE                       *fp;
    char                        tmp[4096];
    char                        iobuf[1 << 16]; /* one write for a typical 256 x 256 file */
    struct jpeg_compress_struct jpg;
    dp_jpeg_cerr_t              jerr;
    int                         jpg_live;
    unsigned char              *mem;     /* jpeg_mem_dest's buffer when fp is NULL */
    unsigned long               mem_len;
    png_structp                 png;
    png_infop                   png_info;
    char                        png_msg[256];
} dp_encode_t;

static int dp_encode_open(dp_encode_t *e, const char *path, const uint8_t *hwc, int w, int h)
{
    if (!path || !hwc || w < 1 || h < 1)
        return SN_FAIL(SN_EINVAL, "%s: bad image to save (%dx%d)", path ? path : "(null)", w, h);
    if (strlen(path) + 64 > sizeof e->tmp)
        return SN_FAIL(SN_EINVAL, "%s: path too long", path);
    dp_tmp_name(e->tmp, sizeof e->tmp, path);
    e->fp = fopen(e->tmp, "wb");
    if (!e->fp) return SN_FAIL(SN_EIO, "%s: cannot create %s: %s", path, e->tmp, strerror(errno));
    setvbuf(e->fp, e->iobuf, _IOFBF, sizeof e->iobuf);
    return 0;
}

/* Closes the temporary and renames it to path, or removes it when rc says failure. */
static int dp_encode_close(dp_encode_t *e, const char *path, int rc)
{
    if (e->fp) {
        if (rc == 0 && (fflush(e->fp) != 0 || ferror(e->fp)))
            rc = SN_FAIL(SN_EIO, "%s: cannot write %s: %s", path, e->tmp, strerror(errno));
        if (fclose(e->fp) != 0 && rc == 0)
            rc = SN_FAIL(SN_EIO, "%s: cannot close %s: %s", path, e->tmp, strerror(errno));
        e->fp = NULL;
        if (rc == 0 && rename(e->tmp, path) != 0)
            rc = SN_FAIL(SN_EIO, "%s: cannot rename %s into place: %s", path, e->tmp, strerror(errno));
        if (rc != 0) unlink(e->tmp);
    }
    return rc;
}

static int dp_jpeg_write(dp_encode_t *e, const char *path, const uint8_t *hwc, int w, int h, int quality)
{
    struct jpeg_compress_struct *ci = &e->jpg;
    ci->err = jpeg_std_error(&e->jerr.pub);
    e->jerr.pub.error_exit = dp_jpeg_cerror_exit;
    e->jerr.pub.output_message = dp_jpeg_quiet;
    if (setjmp(e->jerr.jump)) return SN_FAIL(SN_EIO, "%s: cannot encode JPEG: %s", path, e->jerr.msg);
    jpeg_create_compress(ci);
    e->jpg_live = 1;
    if (e->fp)
        jpeg_stdio_dest(ci, e->fp);
    else
        jpeg_mem_dest(ci, &e->mem, &e->mem_len);
    ci->image_width = (JDIMENSION)w;
    ci->image_height = (JDIMENSION)h;
    ci->input_components = 3;
    ci->in_color_space = JCS_RGB;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, quality, TRUE);
    jpeg_start_compress(ci, TRUE);
    while (ci->next_scanline < ci->image_height) {
        JSAMPROW row[1] = {(JSAMPROW)(hwc + (size_t)ci->next_scanline * w * 3)};
        jpeg_write_scanlines(ci, row, 1);
    }
    jpeg_finish_compress(ci);
    return 0;
}

int dp_image_save_jpeg(const char *path, const uint8_t *hwc, int w, int h, int quality)
{
    if (quality < 1 || quality > 100)
        return SN_FAIL(SN_EINVAL, "%s: JPEG quality %d out of range 1..100", path ? path : "(null)", quality);
    dp_encode_t *e = calloc(1, sizeof *e);
    if (!e) return SN_FAIL(SN_ENOMEM, "%s: cannot allocate a JPEG writer", path);
    int rc = dp_encode_open(e, path, hwc, w, h);
    if (rc == 0) rc = dp_jpeg_write(e, path, hwc, w, h, quality);
    if (e->jpg_live) jpeg_destroy_compress(&e->jpg);
    rc = dp_encode_close(e, path, rc);
    free(e);
    return rc;
}

int dp_image_encode_jpeg(uint8_t **out, size_t *out_len, const uint8_t *hwc, int w, int h, int quality)
{
    const char *what = "JPEG in memory";
    if (!out || !out_len || !hwc || w < 1 || h < 1)
        return SN_FAIL(SN_EINVAL, "%s: bad image to encode (%dx%d)", what, w, h);
    if (quality < 1 || quality > 100)
        return SN_FAIL(SN_EINVAL, "%s: quality %d out of range 1..100", what, quality);
    *out = NULL;
    *out_len = 0;
    dp_encode_t *e = calloc(1, sizeof *e);
    if (!e) return SN_FAIL(SN_ENOMEM, "%s: cannot allocate a JPEG writer", what);
    int rc = dp_jpeg_write(e, what, hwc, w, h, quality);
    if (e->jpg_live) jpeg_destroy_compress(&e->jpg);
    /* libjpeg allocates the buffer with malloc and leaves it to the caller, also when
     * it gave up half-way */
    if (rc == 0) {
        *out = e->mem;
        *out_len = (size_t)e->mem_len;
    } else {
        free(e->mem);
    }
    free(e);
    return rc;
}

static void dp_png_werror(png_structp png, png_const_charp msg)
{
    dp_encode_t *e = png_get_error_ptr(png);
    snprintf(e->png_msg, sizeof e->png_msg, "%s", msg);
    png_longjmp(png, 1);
}

static int dp_png_write(dp_encode_t *e, const char *path, const uint8_t *hwc, int w, int h)
{
    e->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e, dp_png_werror, dp_png_warning);
    if (!e->png) return SN_FAIL(SN_ENOMEM, "%s: cannot create a PNG writer", path);
    e->png_info = png_create_info_struct(e->png);
    if (!e->png_info) return SN_FAIL(SN_ENOMEM, "%s: cannot create a PNG writer", path);
    if (setjmp(png_jmpbuf(e->png))) return SN_FAIL(SN_EIO, "%s: cannot encode PNG: %s", path, e->png_msg);
    png_init_io(e->png, e->fp);
    png_set_IHDR(e->png, e->png_info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(e->png, 6); /* PIL's default compress_level */
    png_write_info(e->png, e->png_info);
    for (int y = 0; y < h; y++) png_write_row(e->png, hwc + (size_t)y * w * 3);
    png_write_end(e->png, NULL);
    return 0;
}

int dp_image_save_png(const char *path, const uint8_t *hwc, int w, int h)
{
    dp_encode_t *e = calloc(1, sizeof *e);
    if (!e) return SN_FAIL(SN_ENOMEM, "%s: cannot allocate a PNG writer", path);
    int rc = dp_encode_open(e, path, hwc, w, h);
    if (rc == 0) rc = dp_png_write(e, path, hwc, w, h);
    if (e->png) png_destroy_write_struct(&e->png, e->png_info ? &e->png_info : NULL);
    rc = dp_encode_close(e, path, rc);
    free(e);
    return rc;
}
