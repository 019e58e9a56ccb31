/*
 * coco_json.c: COCO captions JSON -> dp_coco_t (see coco_json.h for the checks).
 * Must not print or exit; every failure is an SN_FAIL message naming the file.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "shardnet/error.h"
#include "coco_json.h"
#include "tokenize.h"

const char *dp_coco_skip_name(int kind)
{
    switch (kind) {
    case DP_SKIP_NO_IMAGE: return "without image";
    case DP_SKIP_EMPTY:    return "empty";
    case DP_SKIP_BAD_UTF8: return "invalid UTF-8";
    default:               return "?";
    }
}

static int read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return SN_FAIL(SN_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) goto io;
    long sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) goto io;
    char *buf = malloc((size_t)sz + 1);
    if (!buf) {
        fclose(f);
        return SN_FAIL(SN_ENOMEM, "%s: cannot allocate %ld bytes to read it", path, sz);
    }
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        goto io;
    }
    fclose(f);
    buf[sz] = '\0';
    *data = buf;
    *len = (size_t)sz;
    return 0;
io:
    fclose(f);
    return SN_FAIL(SN_EIO, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
}

static int sha256_hex(const char *path, const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return SN_FAIL(SN_EIO, "%s: sha256 failed", path);
    for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* A JSON number that is an exact integer. */
static int get_int(const cJSON *obj, const char *key, int64_t *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(it)) return 0;
    double d = it->valuedouble;
    if (!(d == floor(d)) || fabs(d) > 9007199254740992.0) return 0;
    *v = (int64_t)d;
    return 1;
}

typedef struct id_row { int64_t id, row; } id_row_t;

static int cmp_id_row(const void *a, const void *b)
{
    const id_row_t *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->row < y->row ? -1 : (x->row > y->row);
}

static int64_t find_row(const id_row_t *t, int64_t n, int64_t id)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {  /* first entry with t.id >= id: duplicates resolve to the first image */
        int64_t mid = lo + (hi - lo) / 2;
        if (t[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return (lo < n && t[lo].id == id) ? t[lo].row : -1;
}

static void line_col(const char *data, const char *at, long *line, long *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = data; p < at; p++) {
        if (*p == '\n') { (*line)++; *col = 1; }
        else (*col)++;
    }
}

static char *arena_copy(char **cursor, const char *s)
{
    size_t l = strlen(s) + 1;
    char *d = *cursor;
    memcpy(d, s, l);
    *cursor += l;
    return d;
}

static int skip(const dp_coco_opts_t *o, dp_coco_t *c, int kind, const char *path, int64_t ann_id,
                int64_t index, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s: annotation id %lld (entry %lld): %s", path, (long long)ann_id,
             (long long)index, why);
    if (o && o->strict) return SN_FAIL(SN_EINVAL, "%s (--strict)", msg);
    c->n_skipped[kind]++;
    if (o && o->on_skip) o->on_skip(o->ctx, kind, msg);
    return 0;
}

static int load_tree(const char *path, const cJSON *root, const dp_coco_opts_t *o, dp_coco_t *c)
{
    if (!cJSON_IsObject(root)) return SN_FAIL(SN_EFORMAT, "%s: top level is not a JSON object", path);
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    if (!cJSON_IsArray(images)) return SN_FAIL(SN_EFORMAT, "%s: no \"images\" array", path);
    if (!cJSON_IsArray(anns)) return SN_FAIL(SN_EFORMAT, "%s: no \"annotations\" array", path);

    /* First pass: validate and size the string arena. */
    size_t bytes = 0;
    int64_t ni = 0, na = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, images) {
        int64_t id = 0;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(it, "file_name");
        if (!cJSON_IsObject(it) || !get_int(it, "id", &id))
            return SN_FAIL(SN_EFORMAT, "%s: image entry %lld has no integer \"id\"", path, (long long)ni);
        if (!cJSON_IsString(fn))
            return SN_FAIL(SN_EFORMAT, "%s: image id %lld has no string \"file_name\"", path, (long long)id);
        bytes += strlen(fn->valuestring) + 1;
        ni++;
    }
    cJSON_ArrayForEach(it, anns) {
        int64_t id = 0;
        const cJSON *cap = cJSON_GetObjectItemCaseSensitive(it, "caption");
        if (!cJSON_IsObject(it) || !get_int(it, "id", &id))
            return SN_FAIL(SN_EFORMAT, "%s: annotation entry %lld has no integer \"id\"", path, (long long)na);
        if (!cJSON_IsString(cap))
            return SN_FAIL(SN_EFORMAT, "%s: annotation id %lld (entry %lld) has no string \"caption\"", path,
                           (long long)id, (long long)na);
        bytes += strlen(cap->valuestring) + 1;
        na++;
    }

    c->strings = malloc(bytes + 1);
    c->images = calloc((size_t)ni + 1, sizeof *c->images);
    c->captions = calloc((size_t)na + 1, sizeof *c->captions);
    id_row_t *rows = malloc(((size_t)ni + 1) * sizeof *rows);
    if (!c->strings || !c->images || !c->captions || !rows) {
        free(rows);
        return SN_FAIL(SN_ENOMEM, "%s: cannot allocate arrays for %lld images and %lld captions", path,
                       (long long)ni, (long long)na);
    }
    char *cursor = c->strings;
    cJSON_ArrayForEach(it, images) {
        dp_coco_image_t *im = &c->images[c->n_images];
        get_int(it, "id", &im->id);
        im->file_name = arena_copy(&cursor, cJSON_GetObjectItemCaseSensitive(it, "file_name")->valuestring);
        rows[c->n_images] = (id_row_t){im->id, c->n_images};
        c->n_images++;
    }
    qsort(rows, (size_t)ni, sizeof *rows, cmp_id_row);

    int64_t index = 0;
    int rc = 0;
    cJSON_ArrayForEach(it, anns) {
        int64_t id = 0, image_id = -1;
        get_int(it, "id", &id);
        const char *text = cJSON_GetObjectItemCaseSensitive(it, "caption")->valuestring;
        int has_image = get_int(it, "image_id", &image_id);
        int64_t row = has_image ? find_row(rows, ni, image_id) : -1;
        size_t len = strlen(text);
        long bad = dp_utf8_first_invalid(text, len);
        char why[160];
        if (!has_image) {
            rc = skip(o, c, DP_SKIP_NO_IMAGE, path, id, index, "caption without image (no integer \"image_id\")");
        } else if (row < 0) {
            snprintf(why, sizeof why, "caption without image (image_id %lld is not in \"images\")",
                     (long long)image_id);
            rc = skip(o, c, DP_SKIP_NO_IMAGE, path, id, index, why);
        } else if (bad >= 0) {
            snprintf(why, sizeof why, "caption is not valid UTF-8 (byte %ld)", bad);
            rc = skip(o, c, DP_SKIP_BAD_UTF8, path, id, index, why);
        } else if (dp_utf8_is_blank(text)) {
            rc = skip(o, c, DP_SKIP_EMPTY, path, id, index, "empty caption");
        } else {
            dp_coco_caption_t *cp = &c->captions[c->n_captions++];
            cp->id = id;
            cp->image_id = image_id;
            cp->image_row = row;
            cp->caption = arena_copy(&cursor, text);
        }
        if (rc) break;
        index++;
    }
    free(rows);
    return rc;
}

int dp_coco_load(const char *path, const dp_coco_opts_t *opts, dp_coco_t *out)
{
    memset(out, 0, sizeof *out);
    char *data = NULL;
    size_t len = 0;
    SN_TRY(read_file(path, &data, &len));
    out->file_bytes = (int64_t)len;
    int rc = sha256_hex(path, data, len, out->sha256);
    if (rc) {
        free(data);
        return rc;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!root) {
        long line, col;
        const char *at = (end && end >= data && end <= data + len) ? end : data + len;
        line_col(data, at, &line, &col);
        char near[24] = {0};
        size_t k = 0;
        for (const char *p = at; p < data + len && k < sizeof near - 1 && *p != '\n'; p++)
            near[k++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        rc = SN_FAIL(SN_EFORMAT, "%s: malformed JSON at line %ld, column %ld (byte %ld)%s%s%s", path, line, col,
                     (long)(at - data), k ? " near '" : " at end of file", near, k ? "'" : "");
        free(data);
        return rc;
    }
    for (const char *p = end ? end : data + len; p < data + len; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') continue;
        long line, col;
        line_col(data, p, &line, &col);
        rc = SN_FAIL(SN_EFORMAT, "%s: malformed JSON at line %ld, column %ld (byte %ld): extra data after the "
                     "top-level value", path, line, col, (long)(p - data));
        cJSON_Delete(root);
        free(data);
        return rc;
    }
    free(data);
    rc = load_tree(path, root, opts, out);
    cJSON_Delete(root);
    if (rc) dp_coco_free(out);
    return rc;
}

void dp_coco_free(dp_coco_t *c)
{
    free(c->images);
    free(c->captions);
    free(c->strings);
    memset(c, 0, sizeof *c);
}
