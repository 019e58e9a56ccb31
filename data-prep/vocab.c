/*
 * vocab.c: token counter (open-addressing hash map over an arena of key bytes), the
 * vocabulary (build, sort, threshold, lookup) and its text and HDF5 forms.
 * Must not tokenize, print, exit, or call MPI (the tools move serialised counters).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "shardnet/error.h"
#include "vocab.h"

const char *const dp_special_tokens[DP_N_SPECIALS] = {"<pad>", "<start>", "<end>", "<unk>"};

/* ---- counter -------------------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t        used, cap;
    char          data[];
} chunk_t;

struct dp_counter {
    const char **keys;   /* [cap], NULL = empty slot */
    int64_t     *vals;
    uint64_t    *hashes;
    size_t       cap, n; /* cap is a power of two, n <= cap / 2 */
    chunk_t     *chunks; /* key bytes; the head is the one being filled */
};

static uint64_t hash_str(const char *s, size_t *len)
{
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    const unsigned char *p = (const unsigned char *)s;
    size_t l = 0;
    for (; p[l]; l++) h = (h ^ p[l]) * 1099511628211ull;
    *len = l;
    return h ^ (h >> 29);
}

static int table_alloc(dp_counter_t *c, size_t cap)
{
    c->keys = calloc(cap, sizeof *c->keys);
    c->vals = calloc(cap, sizeof *c->vals);
    c->hashes = calloc(cap, sizeof *c->hashes);
    if (!c->keys || !c->vals || !c->hashes) {
        free(c->keys); free(c->vals); free(c->hashes);
        c->keys = NULL; c->vals = NULL; c->hashes = NULL;
        return SN_FAIL(SN_ENOMEM, "token counter: cannot allocate a table of %zu slots", cap);
    }
    c->cap = cap;
    return 0;
}

dp_counter_t *dp_counter_new(void)
{
    dp_counter_t *c = calloc(1, sizeof *c);
    if (!c) {
        SN_FAIL(SN_ENOMEM, "token counter: cannot allocate");
        return NULL;
    }
    if (table_alloc(c, 1024)) {
        free(c);
        return NULL;
    }
    return c;
}

void dp_counter_free(dp_counter_t *c)
{
    if (!c) return;
    for (chunk_t *k = c->chunks, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    free(c->keys); free(c->vals); free(c->hashes);
    free(c);
}

static size_t find_slot(const dp_counter_t *c, const char *key, size_t len, uint64_t h)
{
    size_t mask = c->cap - 1, i = (size_t)h & mask;
    while (c->keys[i] && !(c->hashes[i] == h && strncmp(c->keys[i], key, len + 1) == 0)) i = (i + 1) & mask;
    return i;
}

static int grow(dp_counter_t *c)
{
    dp_counter_t old = *c;
    SN_TRY(table_alloc(c, old.cap * 2));
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.keys[i]) continue;
        size_t j = (size_t)old.hashes[i] & (c->cap - 1);
        while (c->keys[j]) j = (j + 1) & (c->cap - 1);
        c->keys[j] = old.keys[i];
        c->vals[j] = old.vals[i];
        c->hashes[j] = old.hashes[i];
    }
    free(old.keys); free(old.vals); free(old.hashes);
    return 0;
}

static const char *store_key(dp_counter_t *c, const char *key, size_t len)
{
    chunk_t *k = c->chunks;
    if (!k || k->cap - k->used < len + 1) {
        size_t cap = len + 1 > 65536 ? len + 1 : 65536;
        chunk_t *nk = malloc(sizeof *nk + cap);
        if (!nk) return NULL;
        nk->next = c->chunks;
        nk->used = 0;
        nk->cap = cap;
        c->chunks = k = nk;
    }
    char *d = k->data + k->used;
    memcpy(d, key, len + 1);
    k->used += len + 1;
    return d;
}

/* Slot of token, inserted with value 0 if absent. */
static int upsert(dp_counter_t *c, const char *token, size_t *slot)
{
    size_t len;
    uint64_t h = hash_str(token, &len);
    size_t i = find_slot(c, token, len, h);
    if (!c->keys[i]) {
        if (2 * (c->n + 1) > c->cap) {
            SN_TRY(grow(c));
            i = find_slot(c, token, len, h);
        }
        const char *k = store_key(c, token, len);
        if (!k) return SN_FAIL(SN_ENOMEM, "token counter: cannot store a token of %zu bytes", len);
        c->keys[i] = k;
        c->hashes[i] = h;
        c->vals[i] = 0;
        c->n++;
    }
    *slot = i;
    return 0;
}

int dp_counter_add(dp_counter_t *c, const char *token, int64_t n)
{
    size_t i;
    SN_TRY(upsert(c, token, &i));
    c->vals[i] += n;
    return 0;
}

static int lookup(const dp_counter_t *c, const char *token, int64_t *val)
{
    size_t len;
    uint64_t h = hash_str(token, &len);
    size_t i = find_slot(c, token, len, h);
    if (!c->keys[i]) return 0;
    *val = c->vals[i];
    return 1;
}

int64_t dp_counter_get(const dp_counter_t *c, const char *token)
{
    int64_t v = 0;
    return lookup(c, token, &v) ? v : 0;
}

int64_t dp_counter_size(const dp_counter_t *c) { return (int64_t)c->n; }

int dp_counter_merge(dp_counter_t *dst, const dp_counter_t *src)
{
    for (size_t i = 0; i < src->cap; i++)
        if (src->keys[i]) SN_TRY(dp_counter_add(dst, src->keys[i], src->vals[i]));
    return 0;
}

int dp_counter_serialize(const dp_counter_t *c, char **buf, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->keys[i]) total += strlen(c->keys[i]) + 1 + 8;
    char *b = malloc(total ? total : 1);
    if (!b) return SN_FAIL(SN_ENOMEM, "token counter: cannot allocate %zu bytes to serialise", total);
    size_t o = 0;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->keys[i]) continue;
        size_t l = strlen(c->keys[i]) + 1;
        memcpy(b + o, c->keys[i], l);
        o += l;
        uint64_t v = (uint64_t)c->vals[i];
        for (int k = 0; k < 8; k++) b[o++] = (char)(v >> (8 * k));
    }
    *buf = b;
    *len = total;
    return 0;
}

int dp_counter_add_serialized(dp_counter_t *c, const char *buf, size_t len)
{
    size_t o = 0;
    while (o < len) {
        const char *nul = memchr(buf + o, '\0', len - o);
        if (!nul || (size_t)(nul - buf) + 1 + 8 > len)
            return SN_FAIL(SN_EFORMAT, "serialised token counts are truncated at byte %zu of %zu", o, len);
        const char *tok = buf + o;
        o = (size_t)(nul - buf) + 1;
        uint64_t v = 0;
        for (int k = 0; k < 8; k++) v |= (uint64_t)(unsigned char)buf[o + k] << (8 * k);
        o += 8;
        SN_TRY(dp_counter_add(c, tok, (int64_t)v));
    }
    return 0;
}

/* ---- vocabulary ----------------------------------------------------------------------- */

typedef struct entry { const char *token; int64_t count; } entry_t;

static int cmp_entry(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->token, y->token);  /* unsigned bytes: code point order */
}

static int vocab_alloc(dp_vocab_t *v, int64_t n)
{
    v->tokens = calloc((size_t)n, sizeof *v->tokens);
    v->counts = calloc((size_t)n, sizeof *v->counts);
    v->index = dp_counter_new();
    if (!v->tokens || !v->counts || !v->index)
        return SN_FAIL(SN_ENOMEM, "vocabulary: cannot allocate %lld entries", (long long)n);
    return 0;
}

/* Appends token as the next id; SN_EFORMAT if it is already there. */
static int vocab_append(dp_vocab_t *v, const char *token, int64_t count)
{
    size_t slot;
    int64_t before = dp_counter_size(v->index);
    SN_TRY(upsert(v->index, token, &slot));
    if (dp_counter_size(v->index) == before)
        return SN_FAIL(SN_EFORMAT, "vocabulary: token '%s' appears twice", token);
    v->index->vals[slot] = v->n;
    v->tokens[v->n] = (char *)v->index->keys[slot];
    v->counts[v->n] = count;
    v->n++;
    return 0;
}

int dp_vocab_build(const dp_counter_t *c, int threshold, dp_vocab_t *out)
{
    memset(out, 0, sizeof *out);
    out->threshold = threshold;
    entry_t *e = malloc((c->n + 1) * sizeof *e);
    if (!e) return SN_FAIL(SN_ENOMEM, "vocabulary: cannot allocate %zu entries", c->n);
    size_t m = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->keys[i] && c->vals[i] >= threshold) e[m++] = (entry_t){c->keys[i], c->vals[i]};
    qsort(e, m, sizeof *e, cmp_entry);
    int rc = vocab_alloc(out, (int64_t)m + DP_N_SPECIALS);
    for (int s = 0; rc == 0 && s < DP_N_SPECIALS; s++) rc = vocab_append(out, dp_special_tokens[s], 0);
    for (size_t i = 0; rc == 0 && i < m; i++) rc = vocab_append(out, e[i].token, e[i].count);
    free(e);
    if (rc) dp_vocab_free(out);
    return rc;
}

void dp_vocab_free(dp_vocab_t *v)
{
    free(v->tokens);
    free(v->counts);
    dp_counter_free(v->index);
    memset(v, 0, sizeof *v);
}

int32_t dp_vocab_id(const dp_vocab_t *v, const char *token)
{
    int64_t id;
    return lookup(v->index, token, &id) ? (int32_t)id : DP_UNK;
}

void dp_tmp_name(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s.tmp.%ld", path, (long)getpid());
}

int dp_vocab_write_txt(const dp_vocab_t *v, const char *path)
{
    char tmp[4096];
    dp_tmp_name(path, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "wb");
    if (!f) return SN_FAIL(SN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int ok = 1;
    for (int64_t i = 0; i < v->n && ok; i++)
        ok = fprintf(f, "%s\t%lld\n", v->tokens[i], (long long)v->counts[i]) > 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        int e = errno;
        remove(tmp);
        return SN_FAIL(SN_EIO, "%s: write failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return SN_FAIL(SN_EIO, "%s: cannot rename %s to it: %s", path, tmp, strerror(e));
    }
    return 0;
}

int dp_vocab_load_txt(const char *path, dp_vocab_t *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return SN_FAIL(SN_EIO, "%s: cannot open: %s", path, strerror(errno));
    int64_t lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) lines += ch == '\n';
    rewind(f);
    int rc = vocab_alloc(out, lines + 1);
    out->threshold = -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t ln = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        ln++;
        if (len == 0 || line[len - 1] != '\n') {
            rc = SN_FAIL(SN_EFORMAT, "%s:%lld: line does not end with a newline", path, (long long)ln);
            break;
        }
        line[--len] = '\0';
        char *tab = strchr(line, '\t');
        char *endp = NULL;
        long long count = tab ? (errno = 0, strtoll(tab + 1, &endp, 10)) : -1;
        if (!tab || tab == line || strchr(tab + 1, '\t') || !endp || endp == tab + 1 || *endp || errno ||
            count < 0) {
            rc = SN_FAIL(SN_EFORMAT, "%s:%lld: expected 'token<TAB>count'", path, (long long)ln);
            break;
        }
        *tab = '\0';
        if (ln <= DP_N_SPECIALS && strcmp(line, dp_special_tokens[ln - 1]) != 0) {
            rc = SN_FAIL(SN_EFORMAT, "%s:%lld: expected special token %s, found '%s'", path, (long long)ln,
                         dp_special_tokens[ln - 1], line);
            break;
        }
        rc = vocab_append(out, line, count);
        if (rc) rc = SN_FAIL(rc, "%s:%lld: token '%s' appears twice", path, (long long)ln, line);
    }
    free(line);
    if (rc == 0 && ferror(f)) rc = SN_FAIL(SN_EIO, "%s: read error", path);
    if (rc == 0 && out->n < DP_N_SPECIALS)
        rc = SN_FAIL(SN_EFORMAT, "%s: %lld lines, expected at least the %d special tokens", path,
                     (long long)out->n, DP_N_SPECIALS);
    fclose(f);
    if (rc) dp_vocab_free(out);
    return rc;
}

#define DP_H5_CHECK(expr, what)                                          \
    do {                                                             \
        if ((expr) < 0) {                                            \
            rc = SN_FAIL(SN_EIO, "HDF5: cannot %s", what);           \
            goto done;                                               \
        }                                                            \
    } while (0)

int dp_vocab_h5_write(hid_t loc, const dp_vocab_t *v)
{
    int rc = 0;
    hid_t str_t = -1, space = -1, dcpl = -1, ds = -1, ds2 = -1, aspace = -1, attr = -1;
    hsize_t dims[1] = {(hsize_t)v->n};
    int32_t thr = v->threshold;
    DP_H5_CHECK(str_t = H5Tcopy(H5T_C_S1), "copy the string type");
    DP_H5_CHECK(H5Tset_size(str_t, H5T_VARIABLE), "make a variable-length string type");
    DP_H5_CHECK(H5Tset_cset(str_t, H5T_CSET_UTF8), "set UTF-8 on the string type");
    DP_H5_CHECK(space = H5Screate_simple(1, dims, NULL), "create the dataspace of /vocab");
    DP_H5_CHECK(dcpl = H5Pcreate(H5P_DATASET_CREATE), "create a dataset property list");
    DP_H5_CHECK(H5Pset_obj_track_times(dcpl, 0), "turn off modification times");
    DP_H5_CHECK(ds = H5Dcreate2(loc, "vocab", str_t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), "create /vocab");
    DP_H5_CHECK(H5Dwrite(ds, str_t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->tokens), "write /vocab");
    DP_H5_CHECK(ds2 = H5Dcreate2(loc, "vocab_counts", H5T_STD_I64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
            "create /vocab_counts");
    DP_H5_CHECK(H5Dwrite(ds2, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->counts), "write /vocab_counts");
    DP_H5_CHECK(aspace = H5Screate(H5S_SCALAR), "create a scalar dataspace");
    DP_H5_CHECK(attr = H5Acreate2(loc, "vocab_threshold", H5T_STD_I32LE, aspace, H5P_DEFAULT, H5P_DEFAULT),
            "create attribute vocab_threshold");
    DP_H5_CHECK(H5Awrite(attr, H5T_NATIVE_INT32, &thr), "write attribute vocab_threshold");
done:
    if (attr >= 0) H5Aclose(attr);
    if (aspace >= 0) H5Sclose(aspace);
    if (ds2 >= 0) H5Dclose(ds2);
    if (ds >= 0) H5Dclose(ds);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (str_t >= 0) H5Tclose(str_t);
    return rc;
}
