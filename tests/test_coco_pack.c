/*
 * test_coco_pack.c: the contents of a coco_<split>.h5 written by sn-pack, checked against
 * independent references:
 *   - every caption row decodes (through /vocab) to NLTK's tokens of its caption
 *     (tests/fixtures/coco_text/val2017_tokens.txt: annotation id, tokens made by
 *     nltk.word_tokenize(caption.lower(), preserve_line=True)), words outside the
 *     vocabulary as <unk>, framed by <start> <end>, padded with <pad>, with its length;
 *   - every /images row is PIL's 256 x 256 Lanczos resize of its file (SHA-256 of the
 *     pixels in the image fixture manifest);
 *   - ids, file names, caption -> image rows follow the JSON; /vocab equals vocab.txt;
 *     the attributes (image_size, vocab_threshold, max_len, source_sha256).
 * Usage: test_coco_pack PACKED.h5 CAPTIONS.json TOKENS.txt VOCAB.txt IMAGE_MANIFEST
 * Every image of the JSON must have been packed (coco-mini has no bad input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <hdf5.h>
#include <openssl/evp.h>
#include "coco_json.h"
#include "shardnet/error.h"
#include "vocab.h"

static const char *h5_path, *json_path, *tokens_path, *vocab_path, *manifest_path;

typedef struct packed {
    hid_t   f;
    int64_t n_img, n_cap, L, V;
    int32_t *captions, *lengths, *cap_image;
    int64_t *image_ids;
    char   **file_names, **vocab;
} packed_t;

static packed_t P;
static dp_coco_t C;

static int64_t ds_dims(const char *name, int rank, hsize_t *dims)
{
    hid_t ds = H5Dopen2(P.f, name, H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t sp = H5Dget_space(ds);
    assert_int_equal(H5Sget_simple_extent_ndims(sp), rank);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(ds);
    return (int64_t)dims[0];
}

static void read_all(const char *name, hid_t memtype, void *buf)
{
    hid_t ds = H5Dopen2(P.f, name, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(ds);
}

static char **read_strings(const char *name, int64_t n)
{
    char **s = calloc((size_t)n, sizeof *s);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    read_all(name, t, s);
    H5Tclose(t);
    return s;
}

static int32_t attr_int(const char *name)
{
    int32_t v = -1;
    hid_t a = H5Aopen(P.f, name, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Aread(a, H5T_NATIVE_INT32, &v) >= 0);
    H5Aclose(a);
    return v;
}

static void attr_str(const char *name, char *out, size_t cap)
{
    hid_t a = H5Aopen(P.f, name, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    assert_true(H5Tget_size(t) <= cap);
    assert_true(H5Aread(a, t, out) >= 0);
    H5Tclose(t);
    H5Aclose(a);
}

static int setup(void **state)
{
    (void)state;
    if (dp_coco_load(json_path, NULL, &C) != 0) {
        fprintf(stderr, "%s\n", sn_error_message());
        return -1;
    }
    P.f = H5Fopen(h5_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (P.f < 0) {
        fprintf(stderr, "cannot open %s\n", h5_path);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int64_t i = 0; i < P.n_img && P.file_names; i++) free(P.file_names[i]);
    for (int64_t i = 0; i < P.V && P.vocab; i++) free(P.vocab[i]);
    free(P.file_names);
    free(P.vocab);
    free(P.captions);
    free(P.lengths);
    free(P.cap_image);
    free(P.image_ids);
    H5Fclose(P.f);
    dp_coco_free(&C);
    return 0;
}

/* Shapes, ids, file names, attributes, vocabulary. */
static void test_layout(void **state)
{
    (void)state;
    hsize_t d[4];
    P.n_img = ds_dims("images", 4, d);
    assert_int_equal(d[1], 3);
    assert_int_equal(d[2], 256);
    assert_int_equal(d[3], 256);
    assert_int_equal(P.n_img, C.n_images);
    assert_int_equal(ds_dims("image_ids", 1, d), P.n_img);
    assert_int_equal(ds_dims("file_names", 1, d), P.n_img);
    P.n_cap = ds_dims("captions", 2, d);
    P.L = (int64_t)d[1];
    assert_int_equal(P.n_cap, C.n_captions);
    assert_int_equal(ds_dims("caption_lengths", 1, d), P.n_cap);
    assert_int_equal(ds_dims("caption_image", 1, d), P.n_cap);
    P.V = ds_dims("vocab", 1, d);
    assert_int_equal(ds_dims("vocab_counts", 1, d), P.V);

    P.image_ids = malloc((size_t)P.n_img * sizeof *P.image_ids);
    read_all("image_ids", H5T_NATIVE_INT64, P.image_ids);
    P.file_names = read_strings("file_names", P.n_img);
    for (int64_t i = 0; i < P.n_img; i++) {
        assert_int_equal(P.image_ids[i], C.images[i].id);
        assert_string_equal(P.file_names[i], C.images[i].file_name);
    }

    assert_int_equal(attr_int("image_size"), 256);
    assert_int_equal(attr_int("max_len"), P.L);
    assert_int_equal(attr_int("vocab_threshold"), 4);
    char sha[80] = "";
    attr_str("source_sha256", sha, sizeof sha);
    assert_string_equal(sha, C.sha256);

    dp_vocab_t v;
    assert_int_equal(dp_vocab_load_txt(vocab_path, &v), 0);
    assert_int_equal(v.n, P.V);
    P.vocab = read_strings("vocab", P.V);
    int64_t *counts = malloc((size_t)P.V * sizeof *counts);
    read_all("vocab_counts", H5T_NATIVE_INT64, counts);
    for (int64_t i = 0; i < P.V; i++) {
        assert_string_equal(P.vocab[i], v.tokens[i]);
        assert_int_equal(counts[i], v.counts[i]);
    }
    free(counts);
    dp_vocab_free(&v);
}

/* NLTK's tokens by annotation id, from the fixture (loaded once, sorted by id). */
typedef struct tok_line { int64_t id; char *tokens; } tok_line_t;
static tok_line_t *g_lines;
static size_t g_n_lines;

static int cmp_line(const void *a, const void *b)
{
    int64_t x = ((const tok_line_t *)a)->id, y = ((const tok_line_t *)b)->id;
    return x < y ? -1 : x > y;
}

static void load_tokens(void)
{
    FILE *f = fopen(tokens_path, "r");
    assert_non_null(f);
    size_t cap = 0;
    char *line = NULL;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        line[strcspn(line, "\n")] = '\0';
        if ((g_n_lines & (g_n_lines - 1)) == 0) /* grow at powers of two */
            g_lines = realloc(g_lines, (g_n_lines ? 2 * g_n_lines : 1) * sizeof *g_lines);
        g_lines[g_n_lines++] = (tok_line_t){strtoll(line, NULL, 10), strdup(tab + 1)};
    }
    free(line);
    fclose(f);
    qsort(g_lines, g_n_lines, sizeof *g_lines, cmp_line);
}

static char *nltk_tokens(int64_t id)
{
    tok_line_t key = {id, NULL}, *hit = bsearch(&key, g_lines, g_n_lines, sizeof *g_lines, cmp_line);
    return hit ? strdup(hit->tokens) : NULL;
}

/* Every caption row decodes to the NLTK tokens of its caption. */
static void test_captions_decode(void **state)
{
    (void)state;
    assert_true(P.n_cap > 0 && P.V > 0);
    P.captions = malloc((size_t)(P.n_cap * P.L) * sizeof *P.captions);
    P.lengths = malloc((size_t)P.n_cap * sizeof *P.lengths);
    P.cap_image = malloc((size_t)P.n_cap * sizeof *P.cap_image);
    read_all("captions", H5T_NATIVE_INT32, P.captions);
    read_all("caption_lengths", H5T_NATIVE_INT32, P.lengths);
    read_all("caption_image", H5T_NATIVE_INT32, P.cap_image);
    load_tokens();
    int64_t unk = 0, longest = 0;
    for (int64_t k = 0; k < P.n_cap; k++) {
        const dp_coco_caption_t *c = &C.captions[k];
        assert_int_equal(P.cap_image[k], c->image_row);
        assert_int_equal(P.image_ids[P.cap_image[k]], c->image_id);
        char *toks = nltk_tokens(c->id);
        if (!toks) fail_msg("annotation id %lld is not in %s", (long long)c->id, tokens_path);
        const int32_t *row = P.captions + k * P.L;
        int n = 0;
        assert_int_equal(row[0], DP_START);
        for (char *save = NULL, *t = strtok_r(toks, " ", &save); t; t = strtok_r(NULL, " ", &save), n++) {
            assert_true(1 + n < P.L - 1); /* no caption of coco-mini is truncated */
            int32_t id = row[1 + n];
            assert_true(id >= DP_UNK && id < P.V);
            if (id == DP_UNK) {
                unk++;
                for (int64_t w = DP_N_SPECIALS; w < P.V; w++)
                    if (strcmp(P.vocab[w], t) == 0) fail_msg("caption %lld: '%s' is in the vocabulary, row says <unk>", (long long)k, t);
            } else if (strcmp(P.vocab[id], t) != 0) {
                fail_msg("caption %lld (annotation %lld) token %d: row gives '%s', NLTK '%s'", (long long)k,
                         (long long)c->id, n, P.vocab[id], t);
            }
        }
        assert_int_equal(row[1 + n], DP_END);
        assert_int_equal(P.lengths[k], n + 2);
        for (int64_t j = n + 2; j < P.L; j++) assert_int_equal(row[j], DP_PAD);
        if (n + 2 > longest) longest = n + 2;
        free(toks);
    }
    for (size_t i = 0; i < g_n_lines; i++) free(g_lines[i].tokens);
    free(g_lines);
    assert_int_equal(P.L, longest); /* default --max-len: the longest caption + 2 */
    printf("%lld captions decode to NLTK's tokens (%lld <unk>), L = %lld\n", (long long)P.n_cap, (long long)unk,
           (long long)P.L);
}

/* Every image row is PIL's resize of its file. */
static void test_images_pil(void **state)
{
    (void)state;
    FILE *f = fopen(manifest_path, "r");
    assert_non_null(f);
    hid_t ds = H5Dopen2(P.f, "images", H5P_DEFAULT);
    hid_t fs = H5Dget_space(ds);
    hsize_t mdims[4] = {1, 3, 256, 256};
    hid_t ms = H5Screate_simple(4, mdims, NULL);
    uint8_t *chw = malloc(3 * 256 * 256), *hwc = malloc(3 * 256 * 256);
    char line[1024];
    int checked = 0;
    for (int64_t i = 0; i < P.n_img; i++) {
        char want[80] = "";
        rewind(f);
        while (fgets(line, sizeof line, f)) {
            char kind[16], name[512], sha[80];
            if (sscanf(line, "%15s %511s %79s", kind, name, sha) != 3 || strcmp(kind, "coco") != 0) continue;
            const char *slash = strrchr(name, '/');
            if (slash && strcmp(slash + 1, P.file_names[i]) == 0) snprintf(want, sizeof want, "%s", sha);
        }
        if (!want[0]) continue;
        hsize_t start[4] = {(hsize_t)i, 0, 0, 0};
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, mdims, NULL);
        assert_true(H5Dread(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, chw) >= 0);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 256 * 256; p++) hwc[p * 3 + c] = chw[c * 256 * 256 + p];
        unsigned char md[32];
        char hex[65];
        EVP_Digest(hwc, 256 * 256 * 3, md, NULL, EVP_sha256(), NULL);
        for (int b = 0; b < 32; b++) snprintf(hex + 2 * b, 3, "%02x", md[b]);
        if (strcmp(hex, want) != 0) fail_msg("/images row %lld (%s) differs from PIL's resize", (long long)i, P.file_names[i]);
        checked++;
    }
    printf("%d of %lld image rows checked against PIL: all equal\n", checked, (long long)P.n_img);
    assert_int_equal(checked, P.n_img);
    free(chw);
    free(hwc);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s PACKED.h5 CAPTIONS.json TOKENS.txt VOCAB.txt IMAGE_MANIFEST\n", argv[0]);
        return 2;
    }
    h5_path = argv[1];
    json_path = argv[2];
    tokens_path = argv[3];
    vocab_path = argv[4];
    manifest_path = argv[5];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_captions_decode),
        cmocka_unit_test(test_images_pil),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
