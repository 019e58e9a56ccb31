/*
 * test_coco_tokenize.c: parity of dp_tokenize() with nltk.word_tokenize(caption.lower(),
 * preserve_line=True), against fixtures from tests/gen_coco_text_fixtures.py:
 *   - hard_cases.json: hand-written hard cases + 3000 seeded random strings;
 *   - lower.txt: str.lower() of every code point that it changes;
 *   - val2017_tokens.txt: every caption of captions_val2017_full.json (path in argv[1],
 *     read from ../shared/data, never copied into the repository).
 * Every token list must match exactly. Must not regenerate fixtures or need NLTK.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include "coco_json.h"
#include "shardnet/error.h"
#include "tokenize.h"
#include "unicode.h"

static const char *json_path;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

/* Space-joined tokens, for messages and comparison. */
static void join(const dp_tokens_t *t, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < t->n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? " " : "", dp_token(t, i));
}

static void test_hard_cases(void **state)
{
    (void)state;
    char *doc = slurp(FIXTURE_DIR "/coco_text/hard_cases.json", NULL);
    cJSON *root = cJSON_Parse(doc);
    assert_non_null(root);
    assert_true(cJSON_GetArraySize(root) >= 3000);
    dp_tokens_t t;
    dp_tokens_init(&t);
    int bad = 0, n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, root) {
        const char *in = cJSON_GetArrayItem(c, 0)->valuestring;
        const cJSON *want = cJSON_GetArrayItem(c, 1);
        assert_int_equal(dp_tokenize(in, &t), 0);
        int ok = t.n == cJSON_GetArraySize(want);
        for (int i = 0; ok && i < t.n; i++) ok = strcmp(dp_token(&t, i), cJSON_GetArrayItem(want, i)->valuestring) == 0;
        if (!ok && bad++ < 10) {
            char got[4096];
            join(&t, got, sizeof got);
            char *w = cJSON_PrintUnformatted(want);
            print_error("case %d %s: got [%s], NLTK %s\n", n, cJSON_PrintUnformatted(cJSON_GetArrayItem(c, 0)), got, w);
            free(w);
        }
        n++;
    }
    dp_tokens_free(&t);
    cJSON_Delete(root);
    free(doc);
    if (bad) fail_msg("%d of %d hard cases differ from NLTK", bad, n);
}

static void test_val2017_captions(void **state)
{
    (void)state;
    dp_coco_t coco;
    if (dp_coco_load(json_path, NULL, &coco) != 0) fail_msg("%s", sn_error_message());
    assert_int_equal(coco.n_captions, 25014);
    char *ref = slurp(FIXTURE_DIR "/coco_text/val2017_tokens.txt", NULL);
    dp_tokens_t t;
    dp_tokens_init(&t);
    char *line = ref, got[8192];
    int bad = 0;
    int64_t i = 0;
    for (; i < coco.n_captions && *line; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        assert_int_equal(strtoll(line, NULL, 10), coco.captions[i].id);
        assert_int_equal(dp_tokenize(coco.captions[i].caption, &t), 0);
        join(&t, got, sizeof got);
        if (strcmp(got, tab + 1) != 0 && bad++ < 10)
            print_error("caption id %lld '%s': got [%s], NLTK [%s]\n", (long long)coco.captions[i].id,
                        coco.captions[i].caption, got, tab + 1);
        line = nl + 1;
    }
    assert_int_equal(i, 25014);
    assert_int_equal(*line, '\0');
    dp_tokens_free(&t);
    free(ref);
    dp_coco_free(&coco);
    if (bad) fail_msg("%d of 25014 captions differ from NLTK", bad);
}

/* Direct checks of rules whose failure would be easy to miss in bulk comparisons. */
static void test_rules(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        {"Don't stop.", "do n't stop ."},
        {"A \"quoted\" word", "a `` quoted '' word"},
        {"3.5 miles at 10:30", "3.5 miles at 10:30"},
        {"wait... what", "wait ... what"},
        {"\xC3\x89T\xC3\x89", "\xC3\xA9t\xC3\xA9"},                  /* ÉTÉ -> été */
        {"\xC4\xB0", "i\xCC\x87"},                                    /* İ -> i + U+0307 */
        {"\xCE\x91\xCE\xA3", "\xCE\xB1\xCF\x82"},                     /* ΑΣ -> ας (final sigma) */
        {"\xCE\xA3\xCE\x91", "\xCF\x83\xCE\xB1"},                     /* ΣΑ -> σα */
        {" \t\xC2\xA0\xE3\x80\x80\n", ""},
    };
    dp_tokens_t t;
    dp_tokens_init(&t);
    char got[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(dp_tokenize(cases[i].in, &t), 0);
        join(&t, got, sizeof got);
        assert_string_equal(got, cases[i].want);
    }
    assert_int_equal(dp_tokenize("bad \xC3\x28 utf8", &t), SN_EFORMAT);
    assert_non_null(strstr(sn_error_message(), "byte 4"));
    assert_int_equal(dp_tokenize("\xED\xA0\x80", &t), SN_EFORMAT);  /* surrogate */
    assert_int_equal(dp_tokenize("\xC0\xAF", &t), SN_EFORMAT);      /* overlong */
    assert_true(dp_utf8_is_blank(" \xC2\xA0\t"));
    assert_false(dp_utf8_is_blank(" a "));
    dp_tokens_free(&t);
}

/* dp_uc_lower() against str.lower() for every code point (fixture lower.txt lists the
 * ones that change; all others must map to themselves). */
static void test_lower_all_code_points(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE_DIR "/coco_text/lower.txt", "r");
    assert_non_null(f);
    uint32_t *want = malloc(0x110000 * sizeof *want);
    assert_non_null(want);
    for (uint32_t cp = 0; cp < 0x110000; cp++) want[cp] = cp;
    unsigned cp, lo, extra;
    char line[64];
    int entries = 0;
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%x\t%x %x", &cp, &lo, &extra);
        assert_true(k >= 2 && cp < 0x110000);
        want[cp] = lo;  /* U+0130 -> U+0069 U+0307: the tokenizer appends U+0307 (test_rules) */
        entries++;
    }
    fclose(f);
    assert_true(entries > 1000);
    int bad = 0;
    for (uint32_t c = 0; c < 0x110000; c++) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        if (dp_uc_lower(c) != want[c] && bad++ < 10)
            print_error("U+%04X: lower U+%04X, Python U+%04X\n", c, dp_uc_lower(c), want[c]);
    }
    free(want);
    if (bad) fail_msg("%d code points lower-case differently from Python", bad);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s captions_val2017_full.json\n", argv[0]);
        return 2;
    }
    json_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_lower_all_code_points),
        cmocka_unit_test(test_hard_cases),
        cmocka_unit_test(test_val2017_captions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
