/*
 * vocab.h: token counting and the caption vocabulary of the COCO data-prep tools.
 *
 * dp_counter_t  a hash map token -> count (one per thread; merge them, or serialise them to
 *               send between ranks: the caller owns the transport, this file knows no MPI).
 * dp_vocab_t    the vocabulary: ids 0..3 are <pad> <start> <end> <unk>, then every token
 *               with count >= threshold by count descending, ties by byte order of the
 *               UTF-8 (= Python's str order); token -> id lookup with <unk> for the rest.
 *
 * Text file (vocab.txt): one line per id, "token<TAB>count\n", id = line number - 1
 * (specials first, with count 0). HDF5 (dp_vocab_h5_write): /vocab, variable-length
 * UTF-8 strings [V]; /vocab_counts int64 [V]; attribute vocab_threshold (int32) on the
 * group given. Files are written to "<path>.tmp.<pid>" and renamed when complete.
 * Must not tokenize, print or exit.
 */
#ifndef SN_DP_VOCAB_H
#define SN_DP_VOCAB_H
#include <stddef.h>
#include <stdint.h>
#include <hdf5.h>

enum { DP_PAD = 0, DP_START = 1, DP_END = 2, DP_UNK = 3, DP_N_SPECIALS = 4 };
extern const char *const dp_special_tokens[DP_N_SPECIALS];

/* ---- counting ------------------------------------------------------------------------- */
typedef struct dp_counter dp_counter_t;

dp_counter_t *dp_counter_new(void);              /* NULL and SN_ENOMEM's message on failure */
void          dp_counter_free(dp_counter_t *c);
int           dp_counter_add(dp_counter_t *c, const char *token, int64_t n);
int           dp_counter_merge(dp_counter_t *dst, const dp_counter_t *src);
int64_t       dp_counter_size(const dp_counter_t *c);   /* distinct tokens */
int64_t       dp_counter_get(const dp_counter_t *c, const char *token); /* 0 if absent */

/* Serialised form: per token "token\0" then its count as 8 bytes little-endian, in hash
 * order. *buf is malloc'ed (free it). */
int dp_counter_serialize(const dp_counter_t *c, char **buf, size_t *len);
/* Adds the counts of a serialised counter; SN_EFORMAT if buf is not one. */
int dp_counter_add_serialized(dp_counter_t *c, const char *buf, size_t len);

/* ---- the vocabulary ------------------------------------------------------------------- */
typedef struct dp_vocab {
    int64_t       n;          /* V, specials included */
    char        **tokens;     /* [V] */
    int64_t      *counts;     /* [V], 0 for the specials */
    int           threshold;  /* -1 when loaded from a text file */
    dp_counter_t *index;      /* token -> id */
} dp_vocab_t;

int     dp_vocab_build(const dp_counter_t *c, int threshold, dp_vocab_t *out);
int     dp_vocab_load_txt(const char *path, dp_vocab_t *out);
void    dp_vocab_free(dp_vocab_t *v);
/* id of token, DP_UNK if it is not in the vocabulary. */
int32_t dp_vocab_id(const dp_vocab_t *v, const char *token);

/* Writes the text file (temporary name, renamed at the end). */
int dp_vocab_write_txt(const dp_vocab_t *v, const char *path);
/* Writes /vocab, /vocab_counts and attribute vocab_threshold into an open file or group
 * (no modification times, so equal vocabularies give equal bytes). */
int dp_vocab_h5_write(hid_t loc, const dp_vocab_t *v);

/* Temporary-file helpers shared by the tools: "<path>.tmp.<pid>". */
void dp_tmp_name(const char *path, char *out, size_t cap);

#endif
