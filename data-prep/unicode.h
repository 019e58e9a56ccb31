/*
 * unicode.h: the few Unicode facts the caption tokenizer needs, matching CPython (the
 * interpreter NLTK runs under): UTF-8 decoding, str.lower() of one code point, and the
 * classes behind Python's re \w, \d, \s (and str.split()).
 *
 * Tables come from data-prep/gen_unicode_tables.py (Python 3.11, Unicode 14.0). Must not
 * allocate, print or know about tokens: pure functions of code points.
 */
#ifndef SN_DP_UNICODE_H
#define SN_DP_UNICODE_H
#include <stddef.h>
#include <stdint.h>

/* Decodes one UTF-8 sequence at s[0..len). Returns its byte length (1..4) and sets *cp, or
 * 0 for an invalid sequence (truncated, overlong, surrogate, beyond U+10FFFF). */
int dp_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);
/* Encodes cp (a valid scalar value) into out[0..4); returns the byte length. */
int dp_utf8_encode(uint32_t cp, unsigned char *out);

/* str.lower() of one code point without context: U+0130 maps to U+0069 here (the caller
 * appends U+0307), U+03A3 to U+03C3 (the caller applies the final-sigma rule). */
uint32_t dp_uc_lower(uint32_t cp);

int dp_uc_is_word(uint32_t cp);    /* re \w: str.isalnum() or '_' */
int dp_uc_is_decimal(uint32_t cp); /* re \d: str.isdecimal() */
int dp_uc_is_space(uint32_t cp);   /* re \s and str.split(): str.isspace() */

/* Inline versions that answer ASCII without a call (the tokenizer's hot path). */
static inline int dp_uc_word(uint32_t cp)
{
    if (cp < 0x80)
        return (cp | 0x20) - 'a' < 26u || cp - '0' < 10u || cp == '_';
    return dp_uc_is_word(cp);
}
static inline int dp_uc_space(uint32_t cp)
{
    if (cp < 0x80) return cp == ' ' || cp - 0x09 < 5u || cp - 0x1C < 4u;
    return dp_uc_is_space(cp);
}
static inline int dp_uc_decimal(uint32_t cp)
{
    if (cp < 0x80) return cp - '0' < 10u;
    return dp_uc_is_decimal(cp);
}

/* Properties seen by str.lower()'s final-sigma rule. */
int dp_uc_is_case_ignorable(uint32_t cp);
int dp_uc_is_cased(uint32_t cp);   /* cased and not case-ignorable */

#endif
