#!/usr/bin/python3
"""Reference fixtures for the caption tokenizer and vocabulary (tests/test_coco_text.c,
tests/coco_vocab_cli.sh), computed with NLTK. Run with Debian's python3-nltk:

    /usr/bin/python3 tests/gen_coco_text_fixtures.py [path/to/captions_val2017_full.json]

(default: ../shared/data/coco-mini/annotations/captions_val2017_full.json relative to
the repository root). Writes tests/fixtures/coco_text/:
  union_t4.txt          the same recipe over the union of the reference training set,
                        ../shared/data/flickr8k-1000/captions.json followed by
                        ../shared/data/coco-mini/annotations/captions_train2017.json
                        (captions without image or empty skipped, as sn-vocab does)
  val2017_tokens.txt    one line per annotation in file order: "id<TAB>tok tok ...",
                        tokens of nltk.word_tokenize(caption.lower(), preserve_line=True)
  val2017_vocab_t4.txt  the notebook recipe's vocabulary at threshold 4 (Counter over all
                        captions, count >= 4, <pad> <start> <end> <unk> first), ordered by
                        count descending, ties in code point order: "token<TAB>count"
  hard_cases.json       [[input, [tokens...]], ...]: hand-written hard cases and seeded
                        random strings over the characters that NLTK's rules look at
  lower.txt             every code point that str.lower() changes: "XXXX<TAB>YYYY [ZZZZ]" (hex)
  bad_*.json            small malformed inputs for the sn-vocab error tests
The same inputs and NLTK give the same bytes (no timestamps, fixed seed, sorted output).
"""
import collections
import json
import os
import random
import sys

from nltk.tokenize import NLTKWordTokenizer, word_tokenize

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "coco_text")
DEFAULT_JSON = os.path.join(HERE, "..", "..", "shared", "data", "coco-mini", "annotations",
                            "captions_val2017_full.json")
UNION_JSONS = [os.path.join(HERE, "..", "..", "shared", "data", *p) for p in
               (("flickr8k-1000", "captions.json"), ("coco-mini", "annotations", "captions_train2017.json"))]
SPECIALS = ["<pad>", "<start>", "<end>", "<unk>"]


def tokenize(caption):
    toks = word_tokenize(caption.lower(), preserve_line=True)
    assert toks == NLTKWordTokenizer().tokenize(caption.lower())
    return toks


HARD = [
    # quotes
    '"A dog" on a "couch".', "He said, 'hello there.'", "``quoted'' text", "a ''double'' single",
    '(\"in parens\")', '["bracketed"]', '{"braced"}', '<"angled">', "“Curly” and ‘single’ quotes",
    "«guillemets» and „low” quotes", "back`tick and ```triple", "'tis the 'twas time 'T IS",
    "a 'b' c 'x y", "rock 'n' roll", "'90s kids", "the dogs' bowls", "James' cat's toy",
    # contractions
    "Don't, won't, can't, isn't, I'm, you're, we've, they'll, he'd, she's.",
    "DON'T SHOUT, IT'S LOUD", "I cannot go, gonna, gotta, wanna go, gimme, lemme.",
    "d'ye see more'n that?", "wanna\tgo", "wanna.", "Cannot cannot CANNOT",
    "the man's hat's brim", "o'clock o'neill rock'n'roll", "y'all ain't it",
    # hyphens and dashes
    "a well-known long-haired dog", "a--b", "a---b", "-- dash -- ", "t-shirt - white",
    # numbers
    "3.5 miles at 10:30, 1,000 people, 3,36 euros", "2:1 ratio, 4: items", "pi is 3.14159.",
    "the 1990s.", "a 4x4 truck", "No. 5 and #1", "50% off & more @ store",
    # ellipses, periods
    "wait... what", "end..", "so.... long....", "U.S. flag", "at 5 a.m. on Tuesday.",
    "Dr. Smith vs. Mr. Jones", "e.g. this, i.e. that.", "a.b.c", "trailing period.",
    "period then quote.\"", "period then paren.)", "period space quote. '", "dot.   ",
    "period before newline.\n", "comma at end,", "colon at end:", "comma then newline,\n",
    # parentheses and others
    "(a) [b] {c} <d>", "what? why! really?!", "a;b", "stars * and ** double", "a/b c\\d",
    "cost $3.88 (roughly)", "$100 bills and $5.50", "£5 and €10 and ¥100",
    # whitespace
    "  leading and trailing  ", "tab\tseparated\twords", "line\nbreak", "nbsp\u00a0here",
    "ideographic\u3000space", "em\u2003space", "\u0085next line", "file\x1cseparator",
    # unicode letters and case
    "Café CRÈME brûlée", "ÀÉÎÕÜ àéîõü ÇÑ çñ ÆØÅ æøå ß", "ŁÓDŹ Łódź", "İstanbul İ",
    "ΟΔΥΣΣΕΥΣ Σ ΑΣ ΑΣ.", "ΣΑΣ'Σ", "ΜΆΘΗΜΑΣ'", "ПРИВЕТ мир", "ǅemal ǈ ǋ", "ＦＵＬＬＷＩＤＴＨ",
    "naïve façade", "Ｋelvin K sign", "ſ long s 'ſ", "dotless ı 'ı ıs", "'tıs 'tſ",
    "٣ Arabic-indic 3,٣ and ,٣", "superscript ² ,² and 2,²", "combining e\u0301 'e\u0301",
    "emoji 🐶 dog 🐱", "chinese 狗 and 猫。", "hebrew שלום", "mixed's 狗's",
    # unicode punctuation
    "“smart” ‘quotes’ ’tis", "don’t stop", "a—dash–en", "a…b", "¿qué? ¡sí!", "x·y", "x•y",
]


def fuzz(n, seed=0):
    rng = random.Random(seed)
    pieces = (list(" '\"`.,:;?!()[]{}<>-$%&@#*/\\_\t\n") +
              ["  ", "--", "...", "..", "''", "``", "'s", "'S", "'m", "'d", "'ll", "'re", "'ve",
               "n't", "N'T", "'t", "'T", "can", "not", "cannot", "gon", "na", "wan", "wanna",
               "got", "ta", "gim", "me", "lem", "d", "'ye", "more", "'n", "is", "was", "tis",
               "a", "b", "x", "dog", "Dog", "DOG", "0", "1", "3.5", "10:30", "1,000",
               "«", "»", "“", "”", "‘", "’", "„", "\u00a0", "\u3000", "\u0301", "·",
               "é", "É", "ß", "ı", "ſ", "İ", "Σ", "σ", "Ω", "٣", "²", "狗", "🐶", "K"])
    out = []
    for _ in range(n):
        s = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        out.append(s)
    return out


def vocab_lines(counter, threshold):
    words = [w for w, c in counter.items() if c >= threshold]
    words.sort(key=lambda w: (-counter[w], w))
    return [f"{s}\t0\n" for s in SPECIALS] + [f"{w}\t{counter[w]}\n" for w in words]


def union_vocab(paths, threshold):
    counter = collections.Counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        ids = {im["id"] for im in data["images"]}
        for a in data["annotations"]:
            if a.get("image_id") in ids and a["caption"].strip():
                counter.update(tokenize(a["caption"]))
    return vocab_lines(counter, threshold)


def write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_JSON
    os.makedirs(OUT, exist_ok=True)
    with open(src, encoding="utf-8") as f:
        data = json.load(f)
    anns = data["annotations"]

    counter = collections.Counter()
    lines = []
    for a in anns:
        toks = tokenize(a["caption"])
        assert all(t and not any(ch.isspace() for ch in t) for t in toks)
        counter.update(toks)
        lines.append(f"{a['id']}\t{' '.join(toks)}\n")
    write_text(os.path.join(OUT, "val2017_tokens.txt"), "".join(lines))

    vocab = vocab_lines(counter, 4)
    words = vocab[len(SPECIALS):]
    write_text(os.path.join(OUT, "val2017_vocab_t4.txt"), "".join(vocab))
    union = union_vocab(UNION_JSONS, 4)
    write_text(os.path.join(OUT, "union_t4.txt"), "".join(union))

    cases = HARD + fuzz(3000)
    doc = "[\n" + ",\n".join(json.dumps([s, tokenize(s)], ensure_ascii=True) for s in cases) + "\n]\n"
    write_text(os.path.join(OUT, "hard_cases.json"), doc)

    lower = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        lo = chr(cp).lower()
        if lo != chr(cp):
            lower.append(f"{cp:04X}\t{' '.join(f'{ord(ch):04X}' for ch in lo)}\n")
    write_text(os.path.join(OUT, "lower.txt"), "".join(lower))

    img = '{"id": 1, "file_name": "a.jpg"}'
    good = '{"image_id": 1, "id": 10, "caption": "A dog on a couch."}'
    write_text(os.path.join(OUT, "bad_malformed.json"),
               '{"images": [' + img + '],\n "annotations": [\n  ' + good + ',\n  {"image_id": 1, "id": 11 "caption": "x"}\n]}\n')
    write_text(os.path.join(OUT, "bad_no_image.json"),
               '{"images": [' + img + '],\n "annotations": [\n  ' + good + ',\n  {"image_id": 7, "id": 12, "caption": "A cat."},\n'
               '  {"id": 13, "caption": "A cow."}\n]}\n')
    write_text(os.path.join(OUT, "bad_empty_caption.json"),
               '{"images": [' + img + '],\n "annotations": [\n  ' + good + ',\n  {"image_id": 1, "id": 14, "caption": ""},\n'
               '  {"image_id": 1, "id": 15, "caption": " \\t\\u00a0\\n"}\n]}\n')
    print(f"union of {len(UNION_JSONS)} files: vocabulary {len(union)} ({len(union) - len(SPECIALS)} words + 4 specials)")
    print(f"{len(anns)} captions, vocabulary {len(vocab)} ({len(words)} words + 4 specials), "
          f"{len(cases)} hard cases -> {OUT}")


if __name__ == "__main__":
    main()
