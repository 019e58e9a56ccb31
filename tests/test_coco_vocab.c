/*
 * test_coco_vocab.c: token counting, the vocabulary and the COCO JSON loader.
 *   - counter: counts, merge, serialise/deserialise, growth past many tokens;
 *   - vocabulary: specials first, count descending, ties in code point order, threshold,
 *     <unk> lookup, text round trip and its error messages, HDF5 layout;
 *   - parity: the vocabulary of captions_val2017_full.json (argv[1]) at threshold 4 equals
 *     NLTK's (fixture val2017_vocab_t4.txt): 2,697 words + 4 specials, tokens and counts;
 *   - loader: malformed JSON (line/column), caption without image, empty caption, each
 *     skipped and counted by default and an error naming the annotation with strict.
 * Must not need NLTK or write outside the build directory.
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
#include "coco_json.h"
#include "shardnet/error.h"
#include "tokenize.h"
#include "vocab.h"

static const char *json_path;

static void test_counter(void **state)
{
    (void)state;
    dp_counter_t *a = dp_counter_new(), *b = dp_counter_new(), *c = dp_counter_new();
    assert_non_null(a);
    char tok[32];
    for (int i = 0; i < 5000; i++) {  /* forces several table growths */
        snprintf(tok, sizeof tok, "w%d", i % 2500);
        assert_int_equal(dp_counter_add(a, tok, 1), 0);
    }
    assert_int_equal(dp_counter_size(a), 2500);
    assert_int_equal(dp_counter_get(a, "w17"), 2);
    assert_int_equal(dp_counter_get(a, "w2500"), 0);
    assert_int_equal(dp_counter_add(b, "w17", 5), 0);
    assert_int_equal(dp_counter_add(b, "\xC3\xA9t\xC3\xA9", 3), 0);
    assert_int_equal(dp_counter_merge(a, b), 0);
    assert_int_equal(dp_counter_get(a, "w17"), 7);
    assert_int_equal(dp_counter_size(a), 2501);

    char *buf;
    size_t len;
    assert_int_equal(dp_counter_serialize(a, &buf, &len), 0);
    assert_int_equal(dp_counter_add_serialized(c, buf, len), 0);
    assert_int_equal(dp_counter_add_serialized(c, buf, len), 0);
    assert_int_equal(dp_counter_size(c), 2501);
    assert_int_equal(dp_counter_get(c, "w17"), 14);
    assert_int_equal(dp_counter_get(c, "\xC3\xA9t\xC3\xA9"), 6);
    assert_int_equal(dp_counter_add_serialized(c, buf, len - 3), SN_EFORMAT);
    free(buf);
    dp_counter_free(a);
    dp_counter_free(b);
    dp_counter_free(c);
}

static void test_vocab_order_and_lookup(void **state)
{
    (void)state;
    dp_counter_t *c = dp_counter_new();
    const char *toks[] = {"b", "a", "c", "\xC3\xA9", "z", "rare"};
    const int64_t counts[] = {5, 5, 9, 5, 4, 3};
    for (int i = 0; i < 6; i++) assert_int_equal(dp_counter_add(c, toks[i], counts[i]), 0);
    dp_vocab_t v;
    assert_int_equal(dp_vocab_build(c, 4, &v), 0);
    const char *want[] = {"<pad>", "<start>", "<end>", "<unk>", "c", "a", "b", "\xC3\xA9", "z"};
    assert_int_equal(v.n, 9);
    for (int i = 0; i < 9; i++) assert_string_equal(v.tokens[i], want[i]);
    assert_int_equal(v.counts[4], 9);
    assert_int_equal(v.counts[0], 0);
    assert_int_equal(dp_vocab_id(&v, "a"), 5);
    assert_int_equal(dp_vocab_id(&v, "<end>"), DP_END);
    assert_int_equal(dp_vocab_id(&v, "rare"), DP_UNK);
    assert_int_equal(dp_vocab_id(&v, "never"), DP_UNK);

    /* text round trip */
    const char *path = "test_coco_vocab_roundtrip.txt";
    assert_int_equal(dp_vocab_write_txt(&v, path), 0);
    dp_vocab_t w;
    assert_int_equal(dp_vocab_load_txt(path, &w), 0);
    assert_int_equal(w.n, v.n);
    for (int i = 0; i < 9; i++) {
        assert_string_equal(w.tokens[i], v.tokens[i]);
        assert_int_equal(w.counts[i], v.counts[i]);
    }
    assert_int_equal(dp_vocab_id(&w, "z"), 8);
    dp_vocab_free(&w);
    remove(path);

    /* HDF5 */
    const char *h5 = "test_coco_vocab.h5";
    hid_t f = H5Fcreate(h5, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_int_equal(dp_vocab_h5_write(f, &v), 0);
    H5Fclose(f);
    f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "vocab", H5P_DEFAULT), ft = H5Dget_type(ds), sp = H5Dget_space(ds);
    hsize_t dims[1];
    assert_int_equal(H5Sget_simple_extent_dims(sp, dims, NULL), 1);
    assert_int_equal(dims[0], 9);
    assert_true(H5Tis_variable_str(ft) > 0);
    assert_int_equal(H5Tget_cset(ft), H5T_CSET_UTF8);
    char *rd[9];
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    assert_true(H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rd) >= 0);
    for (int i = 0; i < 9; i++) assert_string_equal(rd[i], want[i]);
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, rd);
    int64_t rc_counts[9];
    hid_t ds2 = H5Dopen2(f, "vocab_counts", H5P_DEFAULT);
    assert_true(H5Dread(ds2, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rc_counts) >= 0);
    assert_int_equal(rc_counts[4], 9);
    int32_t thr = 0;
    hid_t at = H5Aopen(f, "vocab_threshold", H5P_DEFAULT);
    assert_true(H5Aread(at, H5T_NATIVE_INT32, &thr) >= 0);
    assert_int_equal(thr, 4);
    H5Aclose(at); H5Dclose(ds2); H5Tclose(mt); H5Sclose(sp); H5Tclose(ft); H5Dclose(ds); H5Fclose(f);
    remove(h5);
    dp_vocab_free(&v);
    dp_counter_free(c);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_vocab_load_errors(void **state)
{
    (void)state;
    static const struct { const char *text, *expect; } cases[] = {
        {"<pad>\t0\n<start>\t0\n<end>\t0\n<unk>\t0\na\t5\nb 3\n", ":6: expected 'token<TAB>count'"},
        {"<pad>\t0\n<start>\t0\n<unk>\t0\n", ":3: expected special token <end>"},
        {"<pad>\t0\n<start>\t0\n<end>\t0\n<unk>\t0\na\t5\na\t4\n", ":6: token 'a' appears twice"},
        {"<pad>\t0\n<start>\t0\n<end>\t0\n<unk>\t0\na\tx\n", ":5: expected 'token<TAB>count'"},
        {"<pad>\t0\n<start>\t0\n", "expected at least the 4 special tokens"},
        {"<pad>\t0\n<start>\t0\n<end>\t0\n<unk>\t0", ":4: line does not end with a newline"},
    };
    const char *path = "test_coco_vocab_bad.txt";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].text);
        dp_vocab_t v;
        assert_int_equal(dp_vocab_load_txt(path, &v), SN_EFORMAT);
        if (!strstr(sn_error_message(), cases[i].expect))
            fail_msg("case %zu: message '%s' lacks '%s'", i, sn_error_message(), cases[i].expect);
        assert_non_null(strstr(sn_error_message(), path));
    }
    remove(path);
    dp_vocab_t v;
    assert_int_equal(dp_vocab_load_txt("no/such/vocab.txt", &v), SN_EIO);
}

/* The vocabulary recipe of the notebook, in C, against NLTK's. */
static void test_vocab_parity_val2017(void **state)
{
    (void)state;
    dp_coco_t coco;
    if (dp_coco_load(json_path, NULL, &coco) != 0) fail_msg("%s", sn_error_message());
    dp_counter_t *c = dp_counter_new();
    dp_tokens_t t;
    dp_tokens_init(&t);
    for (int64_t i = 0; i < coco.n_captions; i++) {
        assert_int_equal(dp_tokenize(coco.captions[i].caption, &t), 0);
        for (int k = 0; k < t.n; k++) assert_int_equal(dp_counter_add(c, dp_token(&t, k), 1), 0);
    }
    dp_vocab_t v, ref;
    assert_int_equal(dp_vocab_build(c, 4, &v), 0);
    if (dp_vocab_load_txt(FIXTURE_DIR "/coco_text/val2017_vocab_t4.txt", &ref) != 0) fail_msg("%s", sn_error_message());
    assert_int_equal(ref.n, 2697 + 4);
    assert_int_equal(v.n, 2697 + 4);
    for (int64_t i = 0; i < v.n; i++) {
        if (strcmp(v.tokens[i], ref.tokens[i]) != 0 || v.counts[i] != ref.counts[i])
            fail_msg("id %lld: C has '%s' %lld, NLTK has '%s' %lld", (long long)i, v.tokens[i],
                     (long long)v.counts[i], ref.tokens[i], (long long)ref.counts[i]);
    }
    assert_int_equal(dp_vocab_id(&v, "a"), 4);
    dp_vocab_free(&v);
    dp_vocab_free(&ref);
    dp_tokens_free(&t);
    dp_counter_free(c);
    dp_coco_free(&coco);
}

typedef struct seen { int n; char last[512]; } seen_t;
static void on_skip(void *ctx, int kind, const char *msg)
{
    (void)kind;
    seen_t *s = ctx;
    s->n++;
    snprintf(s->last, sizeof s->last, "%s", msg);
}

static void test_loader_errors(void **state)
{
    (void)state;
    dp_coco_t c;
    seen_t s = {0};
    dp_coco_opts_t skip = {.strict = 0, .on_skip = on_skip, .ctx = &s}, strict = {.strict = 1};

    assert_int_equal(dp_coco_load(FIXTURE_DIR "/coco_text/bad_malformed.json", &skip, &c), SN_EFORMAT);
    assert_non_null(strstr(sn_error_message(), "bad_malformed.json: malformed JSON at line 4, column"));
    assert_null(c.captions);

    assert_int_equal(dp_coco_load(FIXTURE_DIR "/coco_text/bad_no_image.json", &skip, &c), 0);
    assert_int_equal(c.n_captions, 1);
    assert_int_equal(c.n_skipped[DP_SKIP_NO_IMAGE], 2);
    assert_int_equal(s.n, 2);
    assert_non_null(strstr(s.last, "annotation id 13"));
    assert_non_null(strstr(s.last, "caption without image"));
    assert_int_equal(c.captions[0].image_row, 0);
    assert_string_equal(c.images[0].file_name, "a.jpg");
    dp_coco_free(&c);
    assert_int_equal(dp_coco_load(FIXTURE_DIR "/coco_text/bad_no_image.json", &strict, &c), SN_EINVAL);
    assert_non_null(strstr(sn_error_message(), "bad_no_image.json: annotation id 12"));
    assert_non_null(strstr(sn_error_message(), "image_id 7 is not in"));

    s.n = 0;
    assert_int_equal(dp_coco_load(FIXTURE_DIR "/coco_text/bad_empty_caption.json", &skip, &c), 0);
    assert_int_equal(c.n_captions, 1);
    assert_int_equal(c.n_skipped[DP_SKIP_EMPTY], 2);
    assert_int_equal(s.n, 2);
    assert_non_null(strstr(s.last, "annotation id 15"));
    assert_non_null(strstr(s.last, "empty caption"));
    dp_coco_free(&c);
    assert_int_equal(dp_coco_load(FIXTURE_DIR "/coco_text/bad_empty_caption.json", &strict, &c), SN_EINVAL);
    assert_non_null(strstr(sn_error_message(), "annotation id 14 (entry 1): empty caption"));

    const char *path = "test_coco_loader.json";
    static const struct { const char *text, *expect; int code; } more[] = {
        {"{\"images\": [], \"annotations\": []} x", "line 1, column 35 (byte 34): extra data", SN_EFORMAT},
        {"[1, 2]", "top level is not a JSON object", SN_EFORMAT},
        {"{\"annotations\": []}", "no \"images\" array", SN_EFORMAT},
        {"{\"images\": [{\"id\": 1}], \"annotations\": []}", "image id 1 has no string \"file_name\"", SN_EFORMAT},
        {"{\"images\": [], \"annotations\": [{\"id\": 3, \"caption\": 5}]}", "annotation id 3 (entry 0) has no string",
         SN_EFORMAT},
        {"{\"images\": [{\"id\": 1, \"file_name\": \"a\"}], \"annotations\": [{\"id\": 3, \"image_id\": 1, "
         "\"caption\": \"bad \xC3\x28\"}]}", "annotation id 3 (entry 0): caption is not valid UTF-8 (byte 4)", SN_EINVAL},
        {"{\"images\": [], \"annotations\": [", "malformed JSON at line 1, column 31 (byte 30) near '['", SN_EFORMAT},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        write_file(path, more[i].text);
        assert_int_equal(dp_coco_load(path, &strict, &c), more[i].code);
        if (!strstr(sn_error_message(), more[i].expect))
            fail_msg("case %zu: message '%s' lacks '%s'", i, sn_error_message(), more[i].expect);
    }
    remove(path);
    assert_int_equal(dp_coco_load("no/such/file.json", NULL, &c), SN_EIO);
    assert_non_null(strstr(sn_error_message(), "no/such/file.json: cannot open"));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s captions_val2017_full.json\n", argv[0]);
        return 2;
    }
    json_path = argv[1];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_vocab_order_and_lookup),
        cmocka_unit_test(test_vocab_load_errors),
        cmocka_unit_test(test_vocab_parity_val2017),
        cmocka_unit_test(test_loader_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
