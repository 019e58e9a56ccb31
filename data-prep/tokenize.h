/*
 * tokenize.h: the caption tokenizer of the COCO data-prep tools.
 *
 * dp_tokenize() gives exactly the tokens of Python's
 *     nltk.word_tokenize(caption.lower(), preserve_line=True)
 * (NLTK 3.8's NLTKWordTokenizer, the Treebank rules with Unicode quotes), including
 * str.lower()'s full mapping (U+0130 -> "i" U+0307) and its final-sigma rule, and the
 * Unicode meaning of re's \w \d \s. Tokens are UTF-8. What is not reproduced: an embedded
 * NUL ends the caption (C strings); NLTK never sees one in COCO JSON either.
 *
 * Thread safety: a dp_tokens_t is a reusable workspace + result for one thread; the
 * functions share no state, so threads tokenize in parallel with one dp_tokens_t each.
 * Must not print, exit or know about vocabularies or files.
 */
#ifndef SN_DP_TOKENIZE_H
#define SN_DP_TOKENIZE_H
#include <stddef.h>
#include <stdint.h>

typedef struct dp_tokens {
    int       n;        /* number of tokens of the last dp_tokenize() */
    char     *text;     /* the tokens, each NUL-terminated, back to back */
    size_t   *offset;   /* offset[i]: start of token i in text */
    /* workspace, grown on demand and kept between calls */
    uint32_t *buf[2];
    size_t    buf_cap, text_cap, offset_cap;
} dp_tokens_t;

void dp_tokens_init(dp_tokens_t *t);
void dp_tokens_free(dp_tokens_t *t);

/* Token i (0 <= i < t->n) of the last dp_tokenize(). */
static inline const char *dp_token(const dp_tokens_t *t, int i) { return t->text + t->offset[i]; }

/* Lower-cases and tokenizes one NUL-terminated UTF-8 caption into out (previous contents
 * are replaced). Returns 0, SN_EFORMAT for invalid UTF-8 (the message names the byte
 * offset) or SN_ENOMEM. A caption of only whitespace gives n == 0. */
int dp_tokenize(const char *utf8_caption, dp_tokens_t *out);
/* The same for a caption of len bytes that need not be NUL-terminated. */
int dp_tokenize_n(const char *utf8_caption, size_t len, dp_tokens_t *out);

/* 1 if s (NUL-terminated UTF-8) has no character other than Python whitespace, i.e. it
 * tokenizes to nothing; invalid UTF-8 counts as content. */
int dp_utf8_is_blank(const char *s);
/* Byte offset of the first invalid UTF-8 sequence in s[0..len), or -1 if it is valid. */
long dp_utf8_first_invalid(const char *s, size_t len);

#endif
