/*
 * test_coco_image.c: the image library (data-prep/image.c) against PIL.
 *
 * References come from tests/gen_image_fixtures.py (Pillow, committed under
 * tests/fixtures/coco_image/, listed in manifest.txt): generated edge-case files must
 * load to exactly PIL's pixels or fail with their message; the resampler alone must
 * equal PIL on in-memory arrays; coco-mini images, read in place from COCO_MINI_DIR,
 * must match PIL's 256 x 256 resize (default mode) within the tolerance
 * (mean |diff| <= 1, max <= 16), and --fast-decode within the bounds measured for it.
 * Run with an argument to select a group: "small" (default), "coco", "coco-all K N".
 * Must not: depend on PIL at test time, or write anywhere but a fresh temporary folder.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <png.h>
#include "shardnet/error.h"
#include "image.h"

#define FX FIXTURE_DIR "/coco_image"

/* ---- helpers ------------------------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open fixture %s (regenerate with tests/gen_image_fixtures.py)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint8_t *read_fixture(const char *name, size_t expect_len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FX, name);
    size_t len;
    uint8_t *buf = read_file(path, &len);
    if (len != expect_len) fail_msg("fixture %s: %zu bytes, expected %zu", path, len, expect_len);
    return buf;
}

typedef struct diff { double mean; int max; size_t differing; } diff_t;

static diff_t compare(const uint8_t *a, const uint8_t *b, size_t n)
{
    diff_t d = {0, 0, 0};
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = abs((int)a[i] - (int)b[i]);
        sum += v;
        if (v > d.max) d.max = v;
        if (v) d.differing++;
    }
    d.mean = sum / (double)n;
    return d;
}

/* Lines of manifest.txt whose first word is kind, split into words (at most 10; the
 * last takes the rest of the line, so "fail NAME some words" keeps its text). */
typedef struct mline { char *w[10]; int n; } mline_t;

static char *g_manifest; /* the file's text, loaded once and cut into words */

static int manifest(const char *kind, mline_t *lines, int cap, int max_words)
{
    if (!g_manifest) {
        char path[1024];
        size_t len;
        snprintf(path, sizeof path, "%s/manifest.txt", FX);
        g_manifest = (char *)read_file(path, &len);
        g_manifest[len] = '\0';
    }
    static char *copy;
    free(copy);
    copy = strdup(g_manifest);
    int n = 0;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        mline_t m = {.n = 0};
        char *p = line;
        while (*p && m.n < max_words) {
            while (*p == ' ') p++;
            if (!*p) break;
            m.w[m.n++] = p;
            if (m.n == max_words) break;
            while (*p && *p != ' ') p++;
            if (*p) *p++ = '\0';
        }
        if (m.n == 0 || strcmp(m.w[0], kind) != 0) continue;
        if (n == cap) fail_msg("manifest: more than %d '%s' lines", cap, kind);
        lines[n++] = m;
    }
    if (n == 0) fail_msg("manifest: no '%s' lines", kind);
    return n;
}

static char g_tmpdir[256];

static const char *tmpdir(void)
{
    if (!g_tmpdir[0]) {
        snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/sn_test_image_XXXXXX");
        assert_non_null(mkdtemp(g_tmpdir));
    }
    return g_tmpdir;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st; (void)type; (void)ftw;
    return remove(path);
}

/* The whole scratch tree, sub-folders included (save/ holds the written images). */
static void rm_tmpdir(void)
{
    if (!g_tmpdir[0]) return;
    nftw(g_tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    g_tmpdir[0] = '\0';
}

/* Entries of a folder other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* The same pattern idea as the generator: edges and gradients, deterministic. */
static void pattern(uint8_t *a, int w, int h, int C, int seed)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < C; c++) {
                int v = (x * (3 + c) + y * (5 + 2 * c) + seed * 17) % 256;
                if (((x / (4 + c)) + y / 3) % 2) v = 255 - v;
                a[((size_t)y * w + x) * C + c] = (uint8_t)v;
            }
}

/* ---- the resampler alone ------------------------------------------------------------- */

static void test_resize_matches_pil(void **state)
{
    (void)state;
    mline_t m[16];
    int n = manifest("resize", m, 16, 8);
    for (int i = 0; i < n; i++) {
        int w = atoi(m[i].w[2]), h = atoi(m[i].w[3]), C = atoi(m[i].w[4]);
        int ow = atoi(m[i].w[6]), oh = atoi(m[i].w[7]);
        uint8_t *in = read_fixture(m[i].w[1], (size_t)w * h * C);
        uint8_t *ref = read_fixture(m[i].w[5], (size_t)ow * oh * C);
        uint8_t *out = malloc((size_t)ow * oh * C);
        assert_int_equal(dp_image_resize(out, ow, oh, in, w, h, C), 0);
        diff_t d = compare(out, ref, (size_t)ow * oh * C);
        if (d.max != 0)
            fail_msg("%s %dx%dx%d -> %dx%d: %zu values differ from PIL (max %d)", m[i].w[1], w, h, C, ow, oh,
                     d.differing, d.max);
        free(in); free(ref); free(out);
    }
    uint8_t px[3] = {1, 2, 3}, o[3];
    assert_int_equal(dp_image_resize(o, 1, 1, px, 1, 1, 2), SN_EINVAL);
    assert_int_equal(dp_image_resize(o, 0, 1, px, 1, 1, 3), SN_EINVAL);
}

/* A huge step in one direction still gives every output row: the ring and the kernel
 * bounds hold at extreme ratios and with one-row images. */
static void test_resize_extremes(void **state)
{
    (void)state;
    int cases[][4] = {{1, 1, 256, 256}, {3000, 2, 5, 300}, {2, 3000, 300, 5}, {7, 9, 7, 9}, {1, 777, 1, 3}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int w = cases[k][0], h = cases[k][1], ow = cases[k][2], oh = cases[k][3];
        uint8_t *in = malloc((size_t)w * h * 3), *out = malloc((size_t)ow * oh * 3);
        memset(in, 200, (size_t)w * h * 3);
        assert_int_equal(dp_image_resize(out, ow, oh, in, w, h, 3), 0);
        /* Normalised weights keep a flat image flat. */
        for (size_t i = 0; i < (size_t)ow * oh * 3; i++)
            if (out[i] != 200) fail_msg("%dx%d -> %dx%d: value %d at %zu, expected 200", w, h, ow, oh, out[i], i);
        free(in); free(out);
    }
}

static void test_dct_scale(void **state)
{
    (void)state;
    assert_int_equal(dp_image_dct_scale(640, 480, 256), 5);  /* 400 x 300; 4/8 gives 240 rows */
    assert_int_equal(dp_image_dct_scale(500, 375, 256), 6);  /* 375 x 282 */
    assert_int_equal(dp_image_dct_scale(4000, 3000, 256), 1);
    assert_int_equal(dp_image_dct_scale(2048, 2048, 256), 1);
    assert_int_equal(dp_image_dct_scale(2041, 2048, 256), 1);  /* ceil(2041 / 8) = 256 */
    assert_int_equal(dp_image_dct_scale(2040, 2048, 256), 2);
    assert_int_equal(dp_image_dct_scale(200, 900, 256), 8);  /* too small already: no scaling */
}

/* ---- decoding ------------------------------------------------------------------------ */

static void test_edge_cases_load_like_pil(void **state)
{
    (void)state;
    mline_t m[32];
    int n = manifest("load", m, 32, 4);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", FX, m[i].w[1]);
        int S = atoi(m[i].w[2]);
        size_t len = (size_t)S * S * 3;
        uint8_t *ref = read_fixture(m[i].w[3], len);
        uint8_t *hwc = malloc(len), *chw = malloc(len);
        dp_image_info_t info;
        if (dp_image_load_resized_hwc(path, S, 0, hwc, &info) != 0) fail_msg("%s", sn_error_message());
        diff_t d = compare(hwc, ref, len);
        if (d.max != 0) fail_msg("%s at %d: %zu values differ from PIL (max %d, mean %.3f)", m[i].w[1], S,
                                 d.differing, d.max, d.mean);
        /* The planar variant holds the same pixels. */
        assert_int_equal(dp_image_load_resized(path, S, 0, chw), 0);
        for (int p = 0; p < S * S; p++)
            for (int c = 0; c < 3; c++)
                if (chw[(size_t)c * S * S + p] != hwc[(size_t)p * 3 + c]) fail_msg("%s: CHW differs from HWC", path);
        /* Format by content: the PNG named .jpg is a PNG. */
        int png = strstr(m[i].w[1], ".png") || strstr(m[i].w[1], "png_named");
        assert_int_equal(info.format, png ? DP_IMAGE_PNG : DP_IMAGE_JPEG);
        /* --fast-decode: the same pixels where no DCT scale fits, close ones where one does. */
        assert_int_equal(dp_image_load_resized_hwc(path, S, 1, chw, &info), 0);
        if (info.format == DP_IMAGE_PNG || dp_image_dct_scale(info.width, info.height, S) == 8) {
            assert_memory_equal(chw, hwc, len);
        } else {
            assert_true(info.decoded_width < info.width);
            d = compare(chw, hwc, len);
            printf("  fast %s %dx%d decoded at %dx%d: mean %.3f max %d\n", m[i].w[1], info.width, info.height,
                   info.decoded_width, info.decoded_height, d.mean, d.max);
            assert_true(d.mean < 30.0); /* 1-pixel stripes: the worst case of DCT scaling */
        }
        free(ref); free(hwc); free(chw);
    }
}

static void test_probe(void **state)
{
    (void)state;
    dp_image_info_t info;
    assert_int_equal(dp_image_probe(FX "/cmyk.jpg", &info), 0);
    assert_int_equal(info.format, DP_IMAGE_JPEG);
    assert_int_equal(info.width, 40);
    assert_int_equal(info.height, 30);
    assert_int_equal(info.components, 4);
    assert_int_equal(dp_image_probe(FX "/png_named.jpg", &info), 0);
    assert_int_equal(info.format, DP_IMAGE_PNG);
    assert_int_equal(info.width, 37);
    assert_int_equal(info.height, 23);
    assert_int_equal(dp_image_probe(FX "/gray_alpha.png", &info), 0);
    assert_int_equal(info.components, 2);
    assert_int_not_equal(dp_image_probe(FX "/not_an_image.jpg", &info), 0);
}

static void test_bad_files_fail_with_their_message(void **state)
{
    (void)state;
    mline_t m[16];
    int n = manifest("fail", m, 16, 3);
    uint8_t *out = malloc(64 * 64 * 3);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", FX, m[i].w[1]);
        for (int fast = 0; fast < 2; fast++) {
            sn_error_clear();
            int rc = dp_image_load_resized(path, 64, fast, out);
            if (rc == 0) fail_msg("%s loaded, expected a failure containing '%s'", m[i].w[1], m[i].w[2]);
            const char *msg = sn_error_message();
            if (!strstr(msg, path)) fail_msg("%s: message does not name the file: %s", m[i].w[1], msg);
            if (!strstr(msg, m[i].w[2])) fail_msg("%s: message lacks '%s': %s", m[i].w[1], m[i].w[2], msg);
            assert_true(rc == SN_EFORMAT || rc == SN_EIO);
        }
    }
    free(out);
    assert_int_equal(dp_image_load_resized(FX "/gray.jpg", 0, 0, (uint8_t[3]){0}), SN_EINVAL);
    assert_int_equal(dp_image_load_resized(FX "/gray.jpg", 8, 0, NULL), SN_EINVAL);
}

/* Interlaced (Adam7) PNGs take the whole-image path; PIL cannot write them, so the
 * reference is the resampler on the same pixels. */
static void test_interlaced_png(void **state)
{
    (void)state;
    const int w = 45, h = 38, S = 24;
    uint8_t *px = malloc((size_t)w * h * 3), *ref = malloc((size_t)S * S * 3), *out = malloc((size_t)S * S * 3);
    pattern(px, w, h, 3, 5);
    assert_int_equal(dp_image_resize(ref, S, S, px, w, h, 3), 0);
    for (int interlace = 0; interlace < 2; interlace++) {
        char path[512];
        snprintf(path, sizeof path, "%s/adam7_%d.png", tmpdir(), interlace);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(png);
        assert_int_equal(setjmp(png_jmpbuf(png)), 0);
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                     interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                     PNG_FILTER_TYPE_DEFAULT);
        png_bytep rows[38];
        for (int y = 0; y < h; y++) rows[y] = px + (size_t)y * w * 3;
        png_set_rows(png, info, rows);
        png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
        png_destroy_write_struct(&png, &info);
        fclose(f);
        if (dp_image_load_resized_hwc(path, S, 0, out, NULL) != 0) fail_msg("%s", sn_error_message());
        assert_memory_equal(out, ref, (size_t)S * S * 3);
    }
    free(px); free(ref); free(out);
}

/* ---- writing ------------------------------------------------------------------------- */

static void test_save_roundtrip_and_no_partial_files(void **state)
{
    (void)state;
    const int S = 40;
    size_t len = (size_t)S * S * 3;
    uint8_t *img = malloc(len), *back = malloc(len);
    pattern(img, S, S, 3, 9);
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/save", tmpdir());
    assert_int_equal(mkdir(dir, 0777), 0);

    /* PNG is lossless; a same-size load is a copy. */
    snprintf(path, sizeof path, "%s/a.png", dir);
    assert_int_equal(dp_image_save_png(path, img, S, S), 0);
    dp_image_info_t info;
    assert_int_equal(dp_image_load_resized_hwc(path, S, 0, back, &info), 0);
    assert_int_equal(info.format, DP_IMAGE_PNG);
    assert_memory_equal(back, img, len);

    /* JPEG at quality 75 is close but lossy; quality 100 is closer. */
    snprintf(path, sizeof path, "%s/a.jpg", dir);
    assert_int_equal(dp_image_save_jpeg(path, img, S, S, 75), 0);
    assert_int_equal(dp_image_load_resized_hwc(path, S, 0, back, &info), 0);
    assert_int_equal(info.format, DP_IMAGE_JPEG);
    diff_t q75 = compare(back, img, len);
    assert_int_equal(dp_image_save_jpeg(path, img, S, S, 100), 0);
    assert_int_equal(dp_image_load_resized_hwc(path, S, 0, back, NULL), 0);
    diff_t q100 = compare(back, img, len);
    assert_true(q75.mean > 0.0 && q100.mean < q75.mean && q75.mean < 40.0);

    /* Encoding into memory gives the bytes of the saved file. */
    uint8_t *mem = NULL;
    size_t mem_len = 0;
    assert_int_equal(dp_image_encode_jpeg(&mem, &mem_len, img, S, S, 100), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *disk = malloc(mem_len + 1);
    assert_int_equal(fread(disk, 1, mem_len + 1, f), mem_len);
    fclose(f);
    assert_memory_equal(disk, mem, mem_len);
    free(disk); free(mem);
    assert_int_equal(dp_image_encode_jpeg(&mem, &mem_len, img, S, S, 101), SN_EINVAL);
    assert_int_equal(dp_image_encode_jpeg(&mem, &mem_len, img, 0, S, 90), SN_EINVAL);

    /* Failures leave nothing behind: the target is a folder (rename fails after the
     * data was written), or the folder does not exist (the temporary cannot be made). */
    snprintf(path, sizeof path, "%s/taken.jpg", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    int before = count_entries(dir);
    sn_error_clear();
    assert_int_equal(dp_image_save_jpeg(path, img, S, S, 75), SN_EIO);
    assert_non_null(strstr(sn_error_message(), path));
    assert_int_equal(dp_image_save_png(path, img, S, S), SN_EIO);
    assert_int_equal(count_entries(dir), before);
    snprintf(path, sizeof path, "%s/missing/b.png", dir);
    assert_int_equal(dp_image_save_png(path, img, S, S), SN_EIO);
    assert_int_equal(count_entries(dir), before);
    assert_int_equal(dp_image_save_jpeg(path, img, S, S, 0), SN_EINVAL);
    rmdir(dir);
    free(img); free(back);
}

/* ---- coco-mini against PIL ------------------------------------------------------------ */

#ifndef COCO_MINI_DIR
#error "COCO_MINI_DIR must name the shared coco-mini folder"
#endif

static void coco_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", COCO_MINI_DIR, name);
    if (access(buf, R_OK) != 0)
        fail_msg("%s: %s (these tests read the shared coco-mini images in place)", buf, strerror(errno));
}

/* Default mode: the tolerance (mean <= 1, max <= 16); this build reproduces PIL
 * exactly, and the printed numbers show it. */
static void test_coco_default_matches_pil(void **state)
{
    (void)state;
    mline_t m[300];
    int n = manifest("coco", m, 300, 4);
    size_t len = 256 * 256 * 3;
    uint8_t *out = malloc(len);
    int full = 0, exact = 0, gray = 0;
    double worst_mean = 0;
    int worst_max = 0;
    for (int i = 0; i < n; i++) {
        if (m[i].n < 4) continue;
        char path[1024];
        coco_path(path, sizeof path, m[i].w[1]);
        uint8_t *ref = read_fixture(m[i].w[3], len);
        dp_image_info_t info;
        if (dp_image_load_resized_hwc(path, 256, 0, out, &info) != 0) fail_msg("%s", sn_error_message());
        diff_t d = compare(out, ref, len);
        if (d.mean > 1.0 || d.max > 16)
            fail_msg("%s: mean |diff| %.3f (limit 1.0), max %d (limit 16)", m[i].w[1], d.mean, d.max);
        full++;
        exact += d.max == 0;
        gray += info.components == 1;
        if (d.mean > worst_mean) worst_mean = d.mean;
        if (d.max > worst_max) worst_max = d.max;
        free(ref);
    }
    printf("coco default mode vs PIL: %d images, %d exact, worst mean %.4f, worst max %d\n", full, exact,
           worst_mean, worst_max);
    assert_int_equal(full, 8);
    assert_int_equal(gray, 1); /* 000000431848.jpg */
    free(out);
}

/* --fast-decode: decoding at libjpeg's DCT scale M/8 moves pixels, most at the odd scales
 * 5/8 and 7/8 on detailed images. Measured on these 8 images: mean of the per-image means
 * 2.75, worst image mean 8.17 (000000508602, M=5), worst single value 158; over all 239
 * coco-mini images: mean 1.89, worst image 8.17, worst value 172. Bounds: those + a little. */
#define FAST_MEAN_OF_MEANS_MAX 3.0
#define FAST_IMAGE_MEAN_MAX    8.5
#define FAST_VALUE_MAX         170

static void test_coco_fast_decode_deviation(void **state)
{
    (void)state;
    mline_t m[300];
    int n = manifest("coco", m, 300, 4);
    size_t len = 256 * 256 * 3;
    uint8_t *out = malloc(len);
    int full = 0, scaled = 0;
    double sum_mean = 0, worst_mean = 0;
    int worst_max = 0;
    for (int i = 0; i < n; i++) {
        if (m[i].n < 4) continue;
        char path[1024];
        coco_path(path, sizeof path, m[i].w[1]);
        uint8_t *ref = read_fixture(m[i].w[3], len);
        dp_image_info_t info;
        if (dp_image_load_resized_hwc(path, 256, 1, out, &info) != 0) fail_msg("%s", sn_error_message());
        int M = dp_image_dct_scale(info.width, info.height, 256);
        assert_int_equal(info.decoded_width, (info.width * M + 7) / 8);
        assert_int_equal(info.decoded_height, (info.height * M + 7) / 8);
        assert_true(info.decoded_width >= 256 || info.decoded_width == info.width);
        assert_true(info.decoded_height >= 256 || info.decoded_height == info.height);
        scaled += M < 8;
        diff_t d = compare(out, ref, len);
        printf("  fast %-28s %dx%d -> %dx%d (M=%d): mean %.3f max %d\n", m[i].w[1], info.width, info.height,
               info.decoded_width, info.decoded_height, M, d.mean, d.max);
        if (d.mean > FAST_IMAGE_MEAN_MAX || d.max > FAST_VALUE_MAX)
            fail_msg("%s: --fast-decode mean |diff| %.3f (bound %.1f), max %d (bound %d)", m[i].w[1], d.mean,
                     FAST_IMAGE_MEAN_MAX, d.max, FAST_VALUE_MAX);
        sum_mean += d.mean;
        if (d.mean > worst_mean) worst_mean = d.mean;
        if (d.max > worst_max) worst_max = d.max;
        full++;
        free(ref);
    }
    printf("coco --fast-decode vs PIL: %d images (%d DCT-scaled), mean of means %.3f, worst mean %.3f, "
           "worst max %d\n", full, scaled, sum_mean / full, worst_mean, worst_max);
    assert_true(sum_mean / full <= FAST_MEAN_OF_MEANS_MAX);
    assert_true(scaled >= 6);          /* the option really scales */
    assert_true(worst_mean > 0.5);     /* and really is not the default path */
    free(out);
}

/* Every coco-mini image (shard g_shard of g_shards, so that each ctest entry stays short
 * in sanitizer builds), from several threads at once as the pack tool will call it: each
 * output's SHA-256 must be PIL's, i.e. bit-exact. */
static int g_shard = 0, g_shards = 1;

static void test_coco_all_exact(void **state)
{
    (void)state;
    static mline_t all[300], m[300];
    int n_all = manifest("coco", all, 300, 4), n = 0;
    for (int i = 0; i < n_all; i++)
        if (i % g_shards == g_shard) m[n++] = all[i];
    char first_bad[1200] = "";
    int exact = 0, failed = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : exact, failed)
    for (int i = 0; i < n; i++) {
        uint8_t *out = malloc(256 * 256 * 3);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", COCO_MINI_DIR, m[i].w[1]);
        unsigned char md[32];
        char hex[65];
        if (dp_image_load_resized_hwc(path, 256, 0, out, NULL) != 0) {
            failed++;
#pragma omp critical
            snprintf(first_bad, sizeof first_bad, "%s", sn_error_message());
        } else {
            EVP_Digest(out, 256 * 256 * 3, md, NULL, EVP_sha256(), NULL);
            for (int b = 0; b < 32; b++) snprintf(hex + 2 * b, 3, "%02x", md[b]);
            if (strcmp(hex, m[i].w[2]) == 0) exact++;
            else {
#pragma omp critical
                snprintf(first_bad, sizeof first_bad, "%s differs from PIL's resize", m[i].w[1]);
            }
        }
        free(out);
    }
    printf("coco-mini shard %d/%d: %d of %d images bit-exact with PIL\n", g_shard, g_shards, exact, n);
    if (failed || exact != n) fail_msg("%d failed, %d inexact; e.g. %s", failed, n - exact - failed, first_bad);
    assert_true(n_all >= 239 && n >= n_all / g_shards);
}

static int teardown(void **state)
{
    (void)state;
    rm_tmpdir();
    return 0;
}

int main(int argc, char **argv)
{
    const char *group = argc > 1 ? argv[1] : "small";
    const struct CMUnitTest small[] = {
        cmocka_unit_test(test_resize_matches_pil),
        cmocka_unit_test(test_resize_extremes),
        cmocka_unit_test(test_dct_scale),
        cmocka_unit_test(test_edge_cases_load_like_pil),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_bad_files_fail_with_their_message),
        cmocka_unit_test(test_interlaced_png),
        cmocka_unit_test(test_save_roundtrip_and_no_partial_files),
    };
    const struct CMUnitTest coco[] = {
        cmocka_unit_test(test_coco_default_matches_pil),
        cmocka_unit_test(test_coco_fast_decode_deviation),
    };
    const struct CMUnitTest coco_all[] = {
        cmocka_unit_test(test_coco_all_exact),
    };
    int rc;
    if (strcmp(group, "small") == 0) rc = cmocka_run_group_tests_name("coco_image small", small, NULL, teardown);
    else if (strcmp(group, "coco") == 0) rc = cmocka_run_group_tests_name("coco_image coco", coco, NULL, teardown);
    else if (strcmp(group, "coco-all") == 0 && argc == 4 && (g_shard = atoi(argv[2])) >= 0 &&
             (g_shards = atoi(argv[3])) > g_shard) rc = cmocka_run_group_tests_name("coco_image coco-all", coco_all, NULL, teardown);
    else {
        fprintf(stderr, "usage: test_coco_image [small | coco | coco-all SHARD SHARDS]\n");
        return 2;
    }
    free(g_manifest);
    return rc;
}
