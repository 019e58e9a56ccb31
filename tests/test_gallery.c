/*
 * test_gallery.c: the HTML caption gallery (src/cli/gallery.c). A page of three real
 * coco-mini val2017 JPEGs (their reference captions from captions_val2017.json) and one
 * item given as RGB pixels; checks: four <img> with data: URIs, the base64 of each JPEG
 * item decodes (OpenSSL's decoder, not ours) to the exact file bytes and that of the
 * pixel item to a JPEG of those pixels; every text is HTML-escaped; UTF-8 passes through
 * and is declared; nothing external (no script, no http); bad items and unwritable paths
 * fail with a message naming the path and leave no file behind. The page is left in the
 * build folder (GALLERY_OUT) for tests/scripts/gallery_screenshot.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "gallery.h"
#include "image.h"
#include "shardnet/error.h"

#ifndef COCO_VAL_DIR
#error "COCO_VAL_DIR must name the shared coco-mini/val2017 folder"
#endif
#ifndef GALLERY_OUT
#error "GALLERY_OUT must name the page to write"
#endif

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return p;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The k-th data: URI of an <img>: its mime type and decoded bytes (malloc'ed). */
static uint8_t *img_bytes(const char *html, int k, char *mime, size_t mime_cap, size_t *len)
{
    const char *p = html;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, "<img src=\"data:");
        assert_non_null(p);
        p += strlen("<img src=\"data:");
    }
    const char *semi = strstr(p, ";base64,");
    assert_non_null(semi);
    assert_true((size_t)(semi - p) < mime_cap);
    snprintf(mime, mime_cap, "%.*s", (int)(semi - p), p);
    const char *b = semi + strlen(";base64,"), *end = strchr(b, '"');
    assert_non_null(end);
    size_t n = (size_t)(end - b);
    assert_int_equal(n % 4, 0);
    uint8_t *out = malloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(out, (const unsigned char *)b, (int)n);
    assert_int_equal(got, (int)(n / 4 * 3));
    /* EVP_DecodeBlock counts the padding as zero bytes */
    size_t pad = (n >= 1 && b[n - 1] == '=') + (n >= 2 && b[n - 2] == '=');
    *len = (size_t)got - pad;
    return out;
}

static const char *const jpeg_names[3] = {"000000000802.jpg", "000000011813.jpg", "000000018575.jpg"};
static const char *const refs[3][5] = {
    {"A kitchen with a refrigerator, stove and oven with cabinets.",
     "A white oven and a white refrigerator are in the kitchen.",
     "The refrigerator is brand new and was delivered today.",
     "Stark white appliances stand out against brown wooden cabinets.",
     "Kitchen appliances and cabinets as seen through opening."},
    {"A camera sits on a tripod connected to a laptop.", "A camera with a computer is set up on a tripod",
     "A camera and tripod is shown with a laptop.", "a tripod sitting next to  a laptop",
     "Camera equipment is set up in a room with vending machines in the background."},
    {"A burger sitting on a table, with another next to it.",
     "Plates that have a burger, french fries, and condiments on them.",
     "Two plates, one with a sandwich and fries, the other with just a sandwich and a pickle.",
     "A place setting, including a burger, fries, a glass and condiments..",
     "a table top with some food on top of it "},
};
static const char *const generated[3] = {"a kitchen with a stove and a refrigerator",
                                         "a camera on a tripod next to a laptop",
                                         "a plate with a sandwich and french fries on a table"};
#define EVIL "a <b>bold</b> & \"quoted\" 'dog'"
#define EVIL_ESCAPED "a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; &#39;dog&#39;"
#define UTF8_REF "caf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x94 na\xc3\xafve, 20 \xc2\xb0" "C"

enum { RGB_S = 240 };

static void gradient(uint8_t *rgb)
{
    for (int y = 0; y < RGB_S; y++)
        for (int x = 0; x < RGB_S; x++) {
            uint8_t *p = rgb + ((size_t)y * RGB_S + x) * 3;
            p[0] = (uint8_t)(40 + x * 200 / RGB_S);
            p[1] = (uint8_t)(60 + y * 160 / RGB_S);
            p[2] = (uint8_t)(200 - (x + y) * 150 / (2 * RGB_S));
        }
}

static void test_gallery_page(void **state)
{
    (void)state;
    uint8_t *jpeg[3], rgb[RGB_S * RGB_S * 3];
    size_t jlen[3];
    char path[1024];
    sn_gallery_item_t items[4];
    memset(items, 0, sizeof items);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", COCO_VAL_DIR, jpeg_names[i]);
        jpeg[i] = slurp(path, &jlen[i]);
        items[i] = (sn_gallery_item_t){.title = jpeg_names[i], .image = jpeg[i], .image_len = jlen[i],
                                       .mime = i == 1 ? NULL : "image/jpeg", /* item 1: sniffed */
                                       .generated = generated[i], .refs = refs[i], .n_refs = 5};
    }
    gradient(rgb);
    static const char *const evil_refs[2] = {EVIL, UTF8_REF};
    items[3] = (sn_gallery_item_t){.title = "pixels <rgb> & 'escaped'", .rgb = rgb, .width = RGB_S,
                                   .height = RGB_S, .generated = EVIL, .refs = evil_refs, .n_refs = 2};

    unlink(GALLERY_OUT);
    assert_int_equal(sn_gallery_write(GALLERY_OUT, "coco-mini val2017 <sample> & more",
                                      "caption model, greedy decoding, BLEU-4 0.123", items, 4),
                     0);
    size_t hlen;
    char *html = (char *)slurp(GALLERY_OUT, &hlen);
    assert_int_equal(strlen(html), hlen);

    /* four images, all inline */
    assert_int_equal(count(html, "<img "), 4);
    assert_int_equal(count(html, "<img src=\"data:image/jpeg;base64,"), 4);
    for (int i = 0; i < 3; i++) {
        char mime[64];
        size_t n;
        uint8_t *b = img_bytes(html, i, mime, sizeof mime, &n);
        assert_string_equal(mime, "image/jpeg");
        assert_int_equal(n, jlen[i]);
        assert_memory_equal(b, jpeg[i], n);
        free(b);
    }
    /* the pixel item: a JPEG (quality 90) of those pixels */
    char mime[64];
    size_t n;
    uint8_t *b = img_bytes(html, 3, mime, sizeof mime, &n);
    uint8_t *want;
    size_t want_len;
    assert_int_equal(dp_image_encode_jpeg(&want, &want_len, rgb, RGB_S, RGB_S, 90), 0);
    assert_int_equal(n, want_len);
    assert_memory_equal(b, want, n);
    free(b); free(want);
    assert_non_null(strstr(html, "width=\"240\" height=\"240\""));

    /* escaping of every text: heading, subtitle, title, generated and reference captions */
    assert_non_null(strstr(html, "<title>coco-mini val2017 &lt;sample&gt; &amp; more</title>"));
    assert_non_null(strstr(html, "<h1>coco-mini val2017 &lt;sample&gt; &amp; more</h1>"));
    assert_non_null(strstr(html, "<p class=\"title\">pixels &lt;rgb&gt; &amp; &#39;escaped&#39;</p>"));
    assert_non_null(strstr(html, "<p class=\"gen\">" EVIL_ESCAPED "</p>"));
    assert_non_null(strstr(html, "<li>" EVIL_ESCAPED "</li>"));
    assert_non_null(strstr(html, "alt=\"" EVIL_ESCAPED "\""));
    assert_null(strstr(html, "<b>"));
    assert_null(strstr(html, "\"quoted\""));
    /* UTF-8 passes through and is declared */
    assert_non_null(strstr(html, "<meta charset=\"utf-8\">"));
    assert_non_null(strstr(html, "<li>" UTF8_REF "</li>"));
    /* the generated caption and every reference, in order */
    for (int i = 0; i < 3; i++) {
        char want_gen[256];
        snprintf(want_gen, sizeof want_gen, "<p class=\"gen\">%s</p>", generated[i]);
        const char *p = strstr(html, want_gen);
        assert_non_null(p);
        for (int r = 0; r < 5; r++) {
            p = strstr(p, refs[i][r]);
            assert_non_null(p);
        }
    }
    /* self-contained */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http:"));
    assert_null(strstr(html, "https:"));
    assert_null(strstr(html, "url("));
    assert_int_equal(count(html, "<figure class=\"card\">"), 4);
    assert_non_null(strstr(html, "<footer>4 images</footer>"));
    free(html);
    for (int i = 0; i < 3; i++) free(jpeg[i]);
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_gallery_errors(void **state)
{
    (void)state;
    static const char *const one_ref[1] = {"a ref"};
    sn_gallery_item_t ok = {.title = "none", .generated = "no picture", .refs = one_ref, .n_refs = 1};

    /* a folder that does not exist: the message names the path */
    const char *missing = "/nonexistent-gallery-dir/sub/gallery.html";
    sn_error_clear();
    assert_int_equal(sn_gallery_write(missing, NULL, NULL, &ok, 1), SN_EIO);
    assert_non_null(strstr(sn_error_message(), missing));

    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s.errors", GALLERY_OUT);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/g.html", dir);
    unlink(path);
    int before = entries(dir);

    /* an item with neither image nor pixels: a placeholder, no <img> */
    assert_int_equal(sn_gallery_write(path, NULL, NULL, &ok, 1), 0);
    size_t n;
    char *html = (char *)slurp(path, &n);
    assert_null(strstr(html, "<img"));
    assert_non_null(strstr(html, "no image"));
    assert_non_null(strstr(html, "<h1>Captions</h1>"));
    free(html);
    unlink(path);

    /* bad items: refused before anything is written, naming the path and the item */
    static const uint8_t gif[] = "GIF89a....";
    sn_gallery_item_t bad[2] = {ok, {.title = "anim", .image = gif, .image_len = sizeof gif, .mime = "image/gif"}};
    sn_error_clear();
    assert_int_equal(sn_gallery_write(path, NULL, NULL, bad, 2), SN_EINVAL);
    assert_non_null(strstr(sn_error_message(), path));
    assert_non_null(strstr(sn_error_message(), "item 1 (anim)"));
    bad[1].mime = NULL;
    assert_int_equal(sn_gallery_write(path, NULL, NULL, bad, 2), SN_EINVAL);
    assert_non_null(strstr(sn_error_message(), "neither JPEG nor PNG"));
    uint8_t px[3] = {0};
    bad[1] = (sn_gallery_item_t){.rgb = px, .width = 0, .height = 1};
    assert_int_equal(sn_gallery_write(path, NULL, NULL, bad, 2), SN_EINVAL);
    bad[1] = (sn_gallery_item_t){.n_refs = 2};
    assert_int_equal(sn_gallery_write(path, NULL, NULL, bad, 2), SN_EINVAL);
    assert_int_equal(sn_gallery_write(path, NULL, NULL, NULL, 1), SN_EINVAL);
    assert_int_equal(sn_gallery_write(NULL, NULL, NULL, &ok, 1), SN_EINVAL);
    assert_int_equal(entries(dir), before);

    /* the target is a folder: the rename fails, the temporary is removed */
    snprintf(path, sizeof path, "%s/taken.html", dir);
    mkdir(path, 0777);
    before = entries(dir);
    sn_error_clear();
    assert_int_equal(sn_gallery_write(path, NULL, NULL, &ok, 1), SN_EIO);
    assert_non_null(strstr(sn_error_message(), path));
    assert_int_equal(entries(dir), before);
    rmdir(path);

    /* an empty gallery is a valid page */
    snprintf(path, sizeof path, "%s/empty.html", dir);
    assert_int_equal(sn_gallery_write(path, "nothing", NULL, NULL, 0), 0);
    html = (char *)slurp(path, &n);
    assert_non_null(strstr(html, "<footer>0 images</footer>"));
    free(html);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gallery_page),
        cmocka_unit_test(test_gallery_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
