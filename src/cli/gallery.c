/*
 * gallery.c: the HTML caption gallery (gallery.h): HTML escaping, a streaming base64
 * encoder for the data: URIs, the page's inline CSS, and the temporary-file-then-rename
 * write. RGB pixels are encoded to JPEG with data-prep's dp_image_encode_jpeg.
 * Must not: load external resources or scripts from the page, print, exit, or leave a
 * partial or temporary file behind on failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gallery.h"
#include "image.h"
#include "shardnet/error.h"

#define SN_GALLERY_JPEG_QUALITY 90

/* Grid of cards, at least 260 px wide each; the photo keeps a 4:3 frame (cropped to fill)
 * so that the captions of a row line up. */
static const char *const css =
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:#f4f5f7;color:#1f2328;"
    "font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\n"
    "header{max-width:1400px;margin:0 auto;padding:28px 28px 6px}\n"
    "h1{margin:0;font-size:26px;font-weight:700;letter-spacing:-.01em}\n"
    "header p{margin:6px 0 0;color:#656d76;font-size:14px}\n"
    "main{max-width:1400px;margin:0 auto;padding:18px 28px 36px;display:grid;gap:22px;"
    "grid-template-columns:repeat(auto-fill,minmax(260px,1fr))}\n"
    ".card{margin:0;background:#fff;border-radius:12px;overflow:hidden;"
    "box-shadow:0 1px 2px rgba(0,0,0,.06),0 4px 14px rgba(0,0,0,.06)}\n"
    ".card img,.card .noimg{display:block;width:100%;height:auto;aspect-ratio:4/3;object-fit:cover;"
    "background:#e6e8eb}\n"
    ".card .noimg{display:flex;align-items:center;justify-content:center;color:#8c959f;font-size:13px}\n"
    "figcaption{padding:14px 16px 16px}\n"
    ".title{margin:0 0 6px;color:#8c959f;font-size:12px;font-variant-numeric:tabular-nums;"
    "overflow-wrap:anywhere}\n"
    ".gen{margin:0;font-size:18px;line-height:1.35;font-weight:600;overflow-wrap:anywhere}\n"
    ".refs-h{margin:12px 0 0;padding-top:10px;border-top:1px solid #eaecef;color:#8c959f;font-size:11px;"
    "text-transform:uppercase;letter-spacing:.06em}\n"
    ".refs{margin:4px 0 0;padding:0 0 0 20px;color:#7d8590;font-size:13px;line-height:1.45}\n"
    ".refs li{margin:2px 0;overflow-wrap:anywhere}\n"
    "footer{max-width:1400px;margin:0 auto;padding:0 28px 28px;color:#8c959f;font-size:12px}\n";

/* ---- text ------------------------------------------------------------------------------ */

static void put_escaped(FILE *f, const char *s)
{
    if (!s) return;
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* ---- base64 (RFC 4648, with padding, no line breaks) ----------------------------------- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(FILE *f, const uint8_t *p, size_t n)
{
    char out[4096];  /* 1024 groups of 3 bytes -> 4 characters */
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = b64_alphabet[v & 63];
        if (o == sizeof out) {
            fwrite(out, 1, o, f);
            o = 0;
        }
    }
    if (i < n) {  /* 1 or 2 bytes left */
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    fwrite(out, 1, o, f);
}

/* ---- items ----------------------------------------------------------------------------- */

static const char *sniff_mime(const uint8_t *p, size_t n)
{
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return "image/jpeg";
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return "image/png";
    return NULL;
}

/* Checks item i before anything is written, so a bad item leaves no file behind. */
static int check_item(const char *path, const sn_gallery_item_t *it, int i)
{
    const char *name = it->title ? it->title : "(untitled)";
    if (it->n_refs < 0 || (it->n_refs > 0 && !it->refs))
        return SN_FAIL(SN_EINVAL, "%s: item %d (%s): %d reference captions but no array", path, i, name, it->n_refs);
    if (it->image) {
        if (it->image_len == 0) return SN_FAIL(SN_EINVAL, "%s: item %d (%s): empty image", path, i, name);
        const char *m = it->mime ? it->mime : sniff_mime(it->image, it->image_len);
        if (!m)
            return SN_FAIL(SN_EINVAL, "%s: item %d (%s): the image is neither JPEG nor PNG (give its mime type)",
                           path, i, name);
        if (strcmp(m, "image/jpeg") != 0 && strcmp(m, "image/png") != 0)
            return SN_FAIL(SN_EINVAL, "%s: item %d (%s): mime type '%s', expected image/jpeg or image/png", path, i,
                           name, m);
    } else if (it->rgb && (it->width < 1 || it->height < 1)) {
        return SN_FAIL(SN_EINVAL, "%s: item %d (%s): RGB pixels of size %dx%d", path, i, name, it->width,
                       it->height);
    }
    return 0;
}

static int put_item(FILE *f, const char *path, const sn_gallery_item_t *it, int i)
{
    const char *alt = it->generated ? it->generated : it->title;
    fputs("<figure class=\"card\">", f);
    if (it->image || it->rgb) {
        uint8_t *jpeg = NULL;
        size_t len = it->image_len;
        const uint8_t *bytes = it->image;
        const char *mime = it->mime ? it->mime : it->image ? sniff_mime(it->image, it->image_len) : "image/jpeg";
        if (!it->image) {
            int rc = dp_image_encode_jpeg(&jpeg, &len, it->rgb, it->width, it->height, SN_GALLERY_JPEG_QUALITY);
            if (rc) {
                char why[512];  /* sn_error_set would otherwise format its own buffer into itself */
                snprintf(why, sizeof why, "%s", sn_error_message());
                return SN_FAIL(rc, "%s: item %d: %s", path, i, why);
            }
            bytes = jpeg;
            mime = "image/jpeg";
        }
        fprintf(f, "<img src=\"data:%s;base64,", mime);
        put_base64(f, bytes, len);
        fputs("\" alt=\"", f);
        put_escaped(f, alt);
        fputc('"', f);
        if (!it->image) fprintf(f, " width=\"%d\" height=\"%d\"", it->width, it->height);
        fputs(">\n", f);
        free(jpeg);
    } else {
        fputs("<div class=\"noimg\">no image</div>\n", f);
    }
    fputs("<figcaption>", f);
    if (it->title) {
        fputs("<p class=\"title\">", f);
        put_escaped(f, it->title);
        fputs("</p>", f);
    }
    fputs("<p class=\"gen\">", f);
    put_escaped(f, it->generated);
    fputs("</p>\n", f);
    if (it->n_refs > 0) {
        fprintf(f, "<p class=\"refs-h\">reference caption%s</p><ol class=\"refs\">", it->n_refs == 1 ? "" : "s");
        for (int r = 0; r < it->n_refs; r++) {
            fputs("<li>", f);
            put_escaped(f, it->refs[r]);
            fputs("</li>", f);
        }
        fputs("</ol>", f);
    }
    fputs("</figcaption></figure>\n", f);
    return 0;
}

/* ---- the page -------------------------------------------------------------------------- */

int sn_gallery_write(const char *path, const char *heading, const char *subtitle,
                     const sn_gallery_item_t *items, int n)
{
    if (!path || !*path) return SN_FAIL(SN_EINVAL, "gallery: no output path");
    if (n < 0 || (n > 0 && !items)) return SN_FAIL(SN_EINVAL, "%s: %d gallery items but no array", path, n);
    for (int i = 0; i < n; i++) SN_TRY(check_item(path, &items[i], i));
    if (!heading) heading = "Captions";

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) return SN_FAIL(SN_ENOMEM, "%s: cannot allocate a temporary name", path);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return SN_FAIL(SN_EIO, "%s: cannot create the gallery (as %s.tmp.*): %s", path, path, strerror(e));
    }

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", f);
    put_escaped(f, heading);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header><h1>", css);
    put_escaped(f, heading);
    fputs("</h1>", f);
    if (subtitle) {
        fputs("<p>", f);
        put_escaped(f, subtitle);
        fputs("</p>", f);
    }
    fputs("</header>\n<main>\n", f);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = put_item(f, path, &items[i], i);
    if (rc == 0) fprintf(f, "</main>\n<footer>%d image%s</footer>\n</body>\n</html>\n", n, n == 1 ? "" : "s");

    if (rc == 0 && (fflush(f) != 0 || ferror(f)))
        rc = SN_FAIL(SN_EIO, "%s: cannot write %s: %s", path, tmp, strerror(errno));
    if (fclose(f) != 0 && rc == 0) rc = SN_FAIL(SN_EIO, "%s: cannot close %s: %s", path, tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = SN_FAIL(SN_EIO, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
    if (rc != 0) remove(tmp);
    free(tmp);
    return rc;
}
