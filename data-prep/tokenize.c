/*
 * tokenize.c: NLTK's word tokenizer (NLTKWordTokenizer.tokenize of nltk 3.8, applied to
 * str.lower() of the caption) re-implemented over arrays of code points.
 *
 * NLTK runs a fixed sequence of regex substitutions over the whole string, each on the
 * result of the previous one, and splits on whitespace at the end. This file runs the same
 * sequence, one pass per regex, with the same leftmost, non-overlapping match semantics of
 * re.sub (lookarounds and \b see the pass's input, matches never overlap). Every pass
 * produces the very string Python would, spaces included, so later passes that look at
 * spaces behave the same. A pass that finds no match leaves the buffer alone.
 *
 * Must not allocate per token or per pass once the workspace is large enough, print, or
 * exit; the only state is the caller's dp_tokens_t.
 */
#include <stdlib.h>
#include <string.h>
#include "shardnet/error.h"
#include "tokenize.h"
#include "unicode.h"

/* One substitution pass: reads src[0..n), writes dst lazily (only once a match is found). */
typedef struct pass {
    const uint32_t *s;
    size_t          n;
    uint32_t       *d;
    size_t          dn;
    size_t          last; /* src[0..last) is already accounted for in dst */
    int             hit;
} pass_t;

static inline void flush_to(pass_t *p, size_t upto)
{
    if (upto > p->last) {
        memcpy(p->d + p->dn, p->s + p->last, (upto - p->last) * sizeof(uint32_t));
        p->dn += upto - p->last;
    }
    p->last = upto;
    p->hit  = 1;
}
static inline void put(pass_t *p, uint32_t c) { p->d[p->dn++] = c; }
static inline void put_src(pass_t *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) p->d[p->dn++] = p->s[i];
}
static inline void put_ascii(pass_t *p, const char *a)
{
    while (*a) p->d[p->dn++] = (unsigned char)*a++;
}

/* ---- the workspace -------------------------------------------------------------------- */

typedef struct tk {
    dp_tokens_t *t;
    int          cur;       /* buf[cur] holds the current string */
    size_t       n;
    uint64_t     ascii[2];  /* ASCII characters present (see has()) */
    int          non_ascii; /* any character >= U+0080 present */
} tk_t;

/* Could c be in the text at some pass? The passes only add spaces, backticks (from ")
 * and apostrophes (from "), so the set seen after lower-casing, widened by those, is an
 * upper bound for every pass. A pass whose trigger characters are absent cannot match
 * and is skipped. */
static inline int has(const tk_t *k, unsigned c) { return (int)((k->ascii[c >> 6] >> (c & 63)) & 1); }
static int has_any(const tk_t *k, const char *chars)
{
    for (; *chars; chars++)
        if (has(k, (unsigned char)*chars)) return 1;
    return 0;
}

/* Both buffers hold at least need code points; the current string is kept. */
static int reserve(tk_t *k, size_t need)
{
    dp_tokens_t *t = k->t;
    if (need <= t->buf_cap) return 0;
    size_t cap = t->buf_cap ? t->buf_cap : 256;
    while (cap < need) cap *= 2;
    for (int b = 0; b < 2; b++) {
        uint32_t *nb = realloc(t->buf[b], cap * sizeof(uint32_t));
        if (!nb) return SN_FAIL(SN_ENOMEM, "tokenizer: cannot grow workspace to %zu code points", cap);
        t->buf[b] = nb;
    }
    t->buf_cap = cap;
    return 0;
}

static inline void begin(tk_t *k, pass_t *p)
{
    p->s = k->t->buf[k->cur];
    p->n = k->n;
    p->d = k->t->buf[1 - k->cur];
    p->dn = 0;
    p->last = 0;
    p->hit = 0;
}

static inline void end(tk_t *k, pass_t *p)
{
    if (!p->hit) return;
    flush_to(p, p->n);
    k->cur = 1 - k->cur;
    k->n   = p->dn;
}

/* Case-insensitive match of the ASCII lower-case letters pat at s[i..]; the text is
 * already lower-cased, so besides the letter itself only the characters that re's
 * IGNORECASE treats as the same letter after str.lower() can occur: U+0131 for i and
 * U+017F for s (and the ASCII capitals, for completeness). */
static inline int ci_eq(uint32_t c, char p)
{
    if (c == (uint32_t)(unsigned char)p) return 1;
    if (p >= 'a' && p <= 'z' && c == (uint32_t)(p - 32)) return 1;
    if (p == 'i' && c == 0x131) return 1;
    if (p == 's' && c == 0x17F) return 1;
    return 0;
}
static int ci_match(const uint32_t *s, size_t n, size_t i, const char *pat)
{
    for (; *pat; pat++, i++)
        if (i >= n || !ci_eq(s[i], *pat)) return 0;
    return 1;
}

static inline int is_word_at(const uint32_t *s, size_t n, size_t i) { return i < n && dp_uc_word(s[i]); }

/* ---- STARTING_QUOTES ------------------------------------------------------------------ */

/* ([«“‘„]|[`]+) -> " \1 " */
static void start_quotes_pad(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i < p.n;) {
        uint32_t c = p.s[i];
        if (c == 0xAB || c == 0x201C || c == 0x2018 || c == 0x201E) {
            flush_to(&p, i); put(&p, ' '); put(&p, c); put(&p, ' ');
            p.last = ++i;
        } else if (c == '`') {
            size_t j = i;
            while (j < p.n && p.s[j] == '`') j++;
            flush_to(&p, i); put(&p, ' '); put_src(&p, i, j); put(&p, ' ');
            p.last = i = j;
        } else i++;
    }
    end(k, &p);
}

/* ^\" -> `` */
static void start_quote_initial(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    if (p.n > 0 && p.s[0] == '"') {
        flush_to(&p, 0); put_ascii(&p, "``");
        p.last = 1;
    }
    end(k, &p);
}

/* (``) -> " \1 " */
static void start_quote_ticks(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 1 < p.n;) {
        if (p.s[i] == '`' && p.s[i + 1] == '`') {
            flush_to(&p, i); put_ascii(&p, " `` ");
            p.last = i = i + 2;
        } else i++;
    }
    end(k, &p);
}

/* ([ \(\[{<])(\"|\'{2}) -> "\1 `` " */
static void start_quote_after_open(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 1 < p.n;) {
        uint32_t c = p.s[i];
        size_t len = 0;
        if (c == ' ' || c == '(' || c == '[' || c == '{' || c == '<') {
            if (p.s[i + 1] == '"') len = 2;
            else if (i + 2 < p.n && p.s[i + 1] == '\'' && p.s[i + 2] == '\'') len = 3;
        }
        if (len) {
            flush_to(&p, i); put(&p, c); put_ascii(&p, " `` ");
            p.last = i = i + len;
        } else i++;
    }
    end(k, &p);
}

/* (?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b -> "\1 \2". A single word character follows the
 * quote (\w\b), so the two-letter exclusions can never match and only m t s d n remain. */
static void start_quote_clitic(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 1 < p.n;) {
        uint32_t w = p.s[i + 1];
        if (p.s[i] == '\'' && dp_uc_word(w) && !is_word_at(p.s, p.n, i + 2) &&
            !ci_eq(w, 'm') && !ci_eq(w, 't') && !ci_eq(w, 's') && !ci_eq(w, 'd') && !ci_eq(w, 'n')) {
            flush_to(&p, i); put(&p, '\''); put(&p, ' '); put(&p, w);
            p.last = i = i + 2;
        } else i++;
    }
    end(k, &p);
}

/* ---- PUNCTUATION ---------------------------------------------------------------------- */

static inline int in_close_set(uint32_t c, int with_unicode)
{
    switch (c) {
    case ']': case ')': case '}': case '>': case '"': case '\'': return 1;
    case 0xBB: case 0x201D: case 0x2019: case ' ': return with_unicode;
    default: return 0;
    }
}

/* ([^\.])(\.)([CLOSE]*)\s*$ with two variants:
 *   unicode = 1: CLOSE = ]  ) } > " ' » ” ’ space, replacement "\1 \2 \3 "
 *   unicode = 0: CLOSE = ]  ) } > " ',             replacement "\1 \2\3 "
 * Everything after the period must be CLOSE characters then whitespace, so the only
 * possible match starts just before the last character outside CLOSE and whitespace;
 * the greedy CLOSE run followed by \s* to the end ($ then matches at the end). */
static void final_period(tk_t *k, int unicode)
{
    pass_t p;
    begin(k, &p);
    size_t t = p.n;
    while (t > 0 && (in_close_set(p.s[t - 1], unicode) || dp_uc_space(p.s[t - 1]))) t--;
    if (t >= 2 && p.s[t - 1] == '.' && p.s[t - 2] != '.') {
        size_t ws = p.n;
        while (ws > 0 && dp_uc_space(p.s[ws - 1])) ws--;
        size_t kk = t;
        while (kk < p.n && in_close_set(p.s[kk], unicode)) kk++;
        if (kk >= ws) {
            flush_to(&p, t - 2);
            put(&p, p.s[t - 2]);
            put_ascii(&p, unicode ? " . " : " .");
            put_src(&p, t, kk);
            put(&p, ' ');
            p.last = p.n;
        }
    }
    end(k, &p);
}

/* ([:,])([^\d]) -> " \1 \2" */
static void colon_comma(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 1 < p.n;) {
        uint32_t c = p.s[i];
        if ((c == ':' || c == ',') && !dp_uc_decimal(p.s[i + 1])) {
            flush_to(&p, i); put(&p, ' '); put(&p, c); put(&p, ' '); put(&p, p.s[i + 1]);
            p.last = i = i + 2;
        } else i++;
    }
    end(k, &p);
}

/* ([:,])$ -> " \1 "   ($ also matches before a final newline) */
static void colon_comma_end(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    size_t n = p.n, i = n;
    if (n >= 1 && (p.s[n - 1] == ':' || p.s[n - 1] == ',')) i = n - 1;
    else if (n >= 2 && p.s[n - 1] == '\n' && (p.s[n - 2] == ':' || p.s[n - 2] == ',')) i = n - 2;
    if (i < n) {
        flush_to(&p, i); put(&p, ' '); put(&p, p.s[i]); put(&p, ' ');
        p.last = i + 1;
    }
    end(k, &p);
}

/* \.{2,} -> " \g<0> " */
static void ellipsis(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 1 < p.n;) {
        if (p.s[i] == '.' && p.s[i + 1] == '.') {
            size_t j = i + 2;
            while (j < p.n && p.s[j] == '.') j++;
            flush_to(&p, i); put(&p, ' '); put_src(&p, i, j); put(&p, ' ');
            p.last = i = j;
        } else i++;
    }
    end(k, &p);
}

/* One-character classes padded with spaces: "[chars]" -> " \g<0> " */
static void pad_chars(tk_t *k, const char *chars)
{
    pass_t p;
    begin(k, &p);
    uint64_t m[2] = {0, 0};
    for (const char *c = chars; *c; c++) m[(unsigned char)*c >> 6] |= 1ull << ((unsigned char)*c & 63);
    for (size_t i = 0; i < p.n; i++) {
        uint32_t c = p.s[i];
        if (c < 0x80 && ((m[c >> 6] >> (c & 63)) & 1)) {
            flush_to(&p, i); put(&p, ' '); put(&p, c); put(&p, ' ');
            p.last = i + 1;
        }
    }
    end(k, &p);
}

/* ([^'])' -> "\1 ' "   (the pattern includes the space after the quote) */
static void quote_space(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 2 < p.n;) {
        if (p.s[i] != '\'' && p.s[i + 1] == '\'' && p.s[i + 2] == ' ') {
            flush_to(&p, i); put(&p, p.s[i]); put_ascii(&p, " ' ");
            p.last = i = i + 3;
        } else i++;
    }
    end(k, &p);
}

/* -- -> " -- " */
static void double_dash(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 1 < p.n;) {
        if (p.s[i] == '-' && p.s[i + 1] == '-') {
            flush_to(&p, i); put_ascii(&p, " -- ");
            p.last = i = i + 2;
        } else i++;
    }
    end(k, &p);
}

/* text = " " + text + " " */
static void wrap_spaces(tk_t *k)
{
    uint32_t *s = k->t->buf[k->cur], *d = k->t->buf[1 - k->cur];
    d[0] = ' ';
    memcpy(d + 1, s, k->n * sizeof(uint32_t));
    d[k->n + 1] = ' ';
    k->n += 2;
    k->cur = 1 - k->cur;
}

/* ---- ENDING_QUOTES -------------------------------------------------------------------- */

/* ([»”’]) -> " \1 " */
static void end_quotes_pad(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i < p.n; i++) {
        uint32_t c = p.s[i];
        if (c == 0xBB || c == 0x201D || c == 0x2019) {
            flush_to(&p, i); put(&p, ' '); put(&p, c); put(&p, ' ');
            p.last = i + 1;
        }
    }
    end(k, &p);
}

/* '' -> " '' " */
static void end_quote_pair(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 1 < p.n;) {
        if (p.s[i] == '\'' && p.s[i + 1] == '\'') {
            flush_to(&p, i); put_ascii(&p, " '' ");
            p.last = i = i + 2;
        } else i++;
    }
    end(k, &p);
}

/* " -> " '' " */
static void end_quote_double(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i < p.n; i++) {
        if (p.s[i] == '"') {
            flush_to(&p, i); put_ascii(&p, " '' ");
            p.last = i + 1;
        }
    }
    end(k, &p);
}

/* ([^' ])('[sS]|'[mM]|'[dD]|') -> "\1 \2 " */
static void clitic_short(tk_t *k)
{
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 2 < p.n;) {
        uint32_t c = p.s[i];
        size_t len = 0;
        if (c != '\'' && c != ' ' && p.s[i + 1] == '\'') {
            uint32_t x = p.s[i + 2];
            if (i + 3 < p.n && p.s[i + 3] == ' ' &&
                (x == 's' || x == 'S' || x == 'm' || x == 'M' || x == 'd' || x == 'D'))
                len = 4;
            else if (x == ' ')
                len = 3;
        }
        if (len) {
            flush_to(&p, i); put(&p, c); put(&p, ' '); put_src(&p, i + 1, i + len - 1); put(&p, ' ');
            p.last = i = i + len;
        } else i++;
    }
    end(k, &p);
}

/* ([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) -> "\1 \2 " */
static void clitic_long(tk_t *k)
{
    static const char *alts[] = {"'ll", "'LL", "'re", "'RE", "'ve", "'VE", "n't", "N'T"};
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 4 < p.n;) {
        uint32_t c = p.s[i];
        int ok = 0;
        if (c != '\'' && c != ' ' && p.s[i + 4] == ' ') {
            for (int a = 0; a < 8 && !ok; a++)
                ok = p.s[i + 1] == (uint32_t)alts[a][0] && p.s[i + 2] == (uint32_t)alts[a][1] &&
                     p.s[i + 3] == (uint32_t)alts[a][2];
        }
        if (ok) {
            flush_to(&p, i); put(&p, c); put(&p, ' '); put_src(&p, i + 1, i + 4); put(&p, ' ');
            p.last = i = i + 5;
        } else i++;
    }
    end(k, &p);
}

/* ---- CONTRACTIONS --------------------------------------------------------------------- */

/* (?i)\b(a)(b)\b -> " \1 \2 ", or with (?=\s) instead of the final \b (wanna). Both
 * halves end and begin with letters or an apostrophe followed by letters. */
static void contraction2(tk_t *k, const char *a, const char *b, int space_after)
{
    size_t la = strlen(a), lb = strlen(b);
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + la + lb <= p.n;) {
        size_t e = i + la + lb;
        if (ci_eq(p.s[i], a[0]) && (i == 0 || !dp_uc_word(p.s[i - 1])) && ci_match(p.s, p.n, i, a) &&
            ci_match(p.s, p.n, i + la, b) &&
            (space_after ? (e < p.n && dp_uc_space(p.s[e])) : !is_word_at(p.s, p.n, e))) {
            flush_to(&p, i);
            put(&p, ' '); put_src(&p, i, i + la); put(&p, ' '); put_src(&p, i + la, e); put(&p, ' ');
            p.last = i = e;
        } else i++;
    }
    end(k, &p);
}

/* (?i) ('t)(is)\b and (?i) ('t)(was)\b -> " \1 \2 " */
static void contraction3(tk_t *k, const char *b)
{
    size_t lb = strlen(b);
    pass_t p;
    begin(k, &p);
    for (size_t i = 0; i + 3 + lb <= p.n;) {
        size_t e = i + 3 + lb;
        if (p.s[i] == ' ' && p.s[i + 1] == '\'' && ci_eq(p.s[i + 2], 't') && ci_match(p.s, p.n, i + 3, b) &&
            !is_word_at(p.s, p.n, e)) {
            flush_to(&p, i);
            put(&p, ' '); put_src(&p, i + 1, i + 3); put(&p, ' '); put_src(&p, i + 3, e); put(&p, ' ');
            p.last = i = e;
        } else i++;
    }
    end(k, &p);
}

/* ---- the pipeline --------------------------------------------------------------------- */

void dp_tokens_init(dp_tokens_t *t) { memset(t, 0, sizeof *t); }

void dp_tokens_free(dp_tokens_t *t)
{
    free(t->text);
    free(t->offset);
    free(t->buf[0]);
    free(t->buf[1]);
    memset(t, 0, sizeof *t);
}

int dp_utf8_is_blank(const char *s)
{
    size_t len = strlen(s);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int l = dp_utf8_decode(u + i, len - i, &cp);
        if (l == 0 || !dp_uc_space(cp)) return 0;
        i += (size_t)l;
    }
    return 1;
}

long dp_utf8_first_invalid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int l = dp_utf8_decode(u + i, len - i, &cp);
        if (l == 0) return (long)i;
        i += (size_t)l;
    }
    return -1;
}

/* str.lower() of the whole caption into buf[0]: full mapping (U+0130 -> i U+0307) and
 * the final-sigma rule, which looks at the neighbours in the original text. */
static int lower_caption(tk_t *k, const char *src, size_t len)
{
    dp_tokens_t *t = k->t;
    const unsigned char *u = (const unsigned char *)src;
    SN_TRY(reserve(k, 2 * len + 8));
    uint32_t *raw = t->buf[1], *low = t->buf[0];
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int l = dp_utf8_decode(u + i, len - i, &cp);
        if (l == 0) return SN_FAIL(SN_EFORMAT, "invalid UTF-8 at byte %zu of the caption", i);
        raw[n++] = cp;
        i += (size_t)l;
    }
    size_t m = 0;
    k->ascii[0] = k->ascii[1] = 0;
    k->non_ascii = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = raw[i];
        k->non_ascii |= cp >= 0x80;
        if (cp < 0x80) {
            low[m++] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        } else if (cp == 0x130) {
            low[m++] = 'i';
            low[m++] = 0x307;
        } else if (cp == 0x3A3) {
            /* final sigma: cased (case-ignorable*) SIGMA not followed by (case-ignorable*) cased */
            size_t j = i;
            while (j > 0 && dp_uc_is_case_ignorable(raw[j - 1])) j--;
            int fin = j > 0 && dp_uc_is_cased(raw[j - 1]);
            if (fin) {
                j = i + 1;
                while (j < n && dp_uc_is_case_ignorable(raw[j])) j++;
                fin = j == n || !dp_uc_is_cased(raw[j]);
            }
            low[m++] = fin ? 0x3C2 : 0x3C3;
        } else {
            low[m++] = dp_uc_lower(cp);
        }
    }
    for (size_t i = 0; i < m; i++)
        if (low[i] < 0x80) k->ascii[low[i] >> 6] |= 1ull << (low[i] & 63);
    if (has(k, '"')) {
        k->ascii['\'' >> 6] |= 1ull << ('\'' & 63);
        k->ascii['`' >> 6] |= 1ull << ('`' & 63);
    }
    k->cur = 0;
    k->n = m;
    return 0;
}

/* Splits on Python whitespace and encodes the tokens as UTF-8. */
static int split_tokens(tk_t *k)
{
    dp_tokens_t *t = k->t;
    const uint32_t *s = t->buf[k->cur];
    size_t n = k->n;
    size_t need_text = 4 * n + n / 2 + 8;
    if (need_text > t->text_cap) {
        char *nt = realloc(t->text, need_text);
        if (!nt) return SN_FAIL(SN_ENOMEM, "tokenizer: cannot allocate %zu bytes of token text", need_text);
        t->text = nt;
        t->text_cap = need_text;
    }
    size_t need_off = n / 2 + 2;
    if (need_off > t->offset_cap) {
        size_t *no = realloc(t->offset, need_off * sizeof(size_t));
        if (!no) return SN_FAIL(SN_ENOMEM, "tokenizer: cannot allocate %zu token offsets", need_off);
        t->offset = no;
        t->offset_cap = need_off;
    }
    size_t tl = 0;
    int nt = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && dp_uc_space(s[i])) i++;
        if (i == n) break;
        t->offset[nt++] = tl;
        while (i < n && !dp_uc_space(s[i]))
            tl += (size_t)dp_utf8_encode(s[i++], (unsigned char *)t->text + tl);
        t->text[tl++] = '\0';
    }
    t->n = nt;
    return 0;
}

#define RUN(call)                         \
    do {                                  \
        SN_TRY(reserve(&k, 4 * k.n + 8)); \
        call;                             \
    } while (0)

int dp_tokenize_n(const char *caption, size_t len, dp_tokens_t *out)
{
    tk_t k = {.t = out, .cur = 0, .n = 0};
    out->n = 0;
    SN_TRY(lower_caption(&k, caption, len));

    int apos = has(&k, '\'');
    if (k.non_ascii || has(&k, '`')) RUN(start_quotes_pad(&k));
    if (has(&k, '"')) RUN(start_quote_initial(&k));
    if (has(&k, '`')) RUN(start_quote_ticks(&k));
    if (apos || has(&k, '"')) RUN(start_quote_after_open(&k));
    if (apos) RUN(start_quote_clitic(&k));

    if (has(&k, '.')) RUN(final_period(&k, 1));
    if (has_any(&k, ":,")) {
        RUN(colon_comma(&k));
        RUN(colon_comma_end(&k));
    }
    if (has(&k, '.')) RUN(ellipsis(&k));
    if (has_any(&k, ";@#$%&")) RUN(pad_chars(&k, ";@#$%&"));
    if (has(&k, '.')) RUN(final_period(&k, 0));
    if (has_any(&k, "?!")) RUN(pad_chars(&k, "?!"));
    if (apos) RUN(quote_space(&k));
    if (has(&k, '*')) RUN(pad_chars(&k, "*"));

    if (has_any(&k, "[](){}<>")) RUN(pad_chars(&k, "[](){}<>"));
    if (has(&k, '-')) RUN(double_dash(&k));
    RUN(wrap_spaces(&k));

    if (k.non_ascii) RUN(end_quotes_pad(&k));
    if (apos) RUN(end_quote_pair(&k));
    if (has(&k, '"')) RUN(end_quote_double(&k));
    if (apos) {
        RUN(clitic_short(&k));
        RUN(clitic_long(&k));
    }

    /* letters that re's IGNORECASE cannot replace (i and s can be U+0131, U+017F) */
    if (has(&k, 'c') && has(&k, 'n')) RUN(contraction2(&k, "can", "not", 0));
    if (apos && has(&k, 'd')) RUN(contraction2(&k, "d", "'ye", 0));
    if (has(&k, 'g') && has(&k, 'm')) RUN(contraction2(&k, "gim", "me", 0));
    if (has(&k, 'g') && has(&k, 'n')) RUN(contraction2(&k, "gon", "na", 0));
    if (has(&k, 'g') && has(&k, 't')) RUN(contraction2(&k, "got", "ta", 0));
    if (has(&k, 'l') && has(&k, 'm')) RUN(contraction2(&k, "lem", "me", 0));
    if (apos && has(&k, 'm')) RUN(contraction2(&k, "more", "'n", 0));
    if (has(&k, 'w') && has(&k, 'n')) RUN(contraction2(&k, "wan", "na", 1));
    if (apos && has(&k, 't')) {
        RUN(contraction3(&k, "is"));
        RUN(contraction3(&k, "was"));
    }

    return split_tokens(&k);
}

int dp_tokenize(const char *caption, dp_tokens_t *out)
{
    return dp_tokenize_n(caption, strlen(caption), out);
}
