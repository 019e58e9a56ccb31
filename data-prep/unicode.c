/*
 * unicode.c: UTF-8 decoding and CPython's character classes for the caption tokenizer.
 * ASCII is answered by small inline tests; everything else by binary search in the
 * generated range tables of unicode_tables.h. Must not allocate or print.
 */
#include "unicode.h"
#include "unicode_tables.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

int dp_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (len == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0)      { n = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)n > len) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

int dp_utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

uint32_t dp_uc_lower(uint32_t cp)
{
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    if (cp == 0x130) return 'i';
    size_t lo = 0, hi = N_OF(dp_uc_lower_table);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct dp_uc_lower_range *r = &dp_uc_lower_table[mid];
        if (cp < r->lo) hi = mid;
        else if (cp > r->hi) lo = mid + 1;
        else return ((cp - r->lo) % r->stride == 0) ? (uint32_t)((int32_t)cp + r->delta) : cp;
    }
    return cp == 0x3A3 ? 0x3C3 : cp;
}

int dp_uc_is_word(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_';
    return in_ranges(dp_uc_word_ranges, N_OF(dp_uc_word_ranges), cp);
}

int dp_uc_is_decimal(uint32_t cp)
{
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return in_ranges(dp_uc_decimal_ranges, N_OF(dp_uc_decimal_ranges), cp);
}

int dp_uc_is_space(uint32_t cp)
{
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    return in_ranges(dp_uc_space_ranges, N_OF(dp_uc_space_ranges), cp);
}

int dp_uc_is_case_ignorable(uint32_t cp)
{
    return in_ranges(dp_uc_case_ignorable_ranges, N_OF(dp_uc_case_ignorable_ranges), cp);
}

int dp_uc_is_cased(uint32_t cp) { return in_ranges(dp_uc_cased_ranges, N_OF(dp_uc_cased_ranges), cp); }
