#!/usr/bin/python3
"""Reference fixtures for corpus BLEU (tests/test_bleu.c), computed with NLTK's
nltk.translate.bleu_score.corpus_bleu. Run with Debian's python3-nltk:

    /usr/bin/python3 tests/gen_bleu_fixtures.py [path/to/captions_val2017.json]

(default: ../shared/data/coco-mini/annotations/captions_val2017.json relative to the
repository root). Writes tests/fixtures/bleu/bleu.snfx (tests/fixture_io.py format):

  corpora                 i32 [1]: the number of corpora K; for k = 0..K-1, prefix "c<k>.":
  name                    i32 [len]: the corpus name as UTF-8 bytes (for messages)
  hyp_ids, hyp_off        hypotheses: segment s is hyp_ids[hyp_off[s]:hyp_off[s+1]]
  ref_ids, ref_off        all references in a row: reference j is ref_ids[ref_off[j]:ref_off[j+1]]
  seg_ref                 segment s has references seg_ref[s] .. seg_ref[s+1]-1
  stats                   i32 [10]: NLTK's summed counts in the layout of shardnet/bleu.h
                          (modified_precision numerators n=1..4, denominators n=1..4,
                          hypothesis length, closest reference length)
  bleu                    f64 [4]: corpus_bleu with weights (1/N,)*N, N = 1..4, no smoothing

Tokens are nltk.word_tokenize(caption.lower(), preserve_line=True), as the vocabulary;
ids are 4 + the rank of the token in code point order among all fixture tokens (0..3
stand for the special tokens, which the caller strips before scoring).

Corpora: on the real val captions, grouped per image (images in id order) -
  val_loo       hypothesis: reference (i mod 5) of image i; references: the other four
  val_baseline  "a black dog runs through the water ." for every image, all references
                (README: BLEU-1..4 = 32.89 / 7.70 / 2.21 / 0.00)
  val_random    seeded random token sequences, lengths 1..20, uniform over the val tokens
  val_random_frequent  the same over the 12 most frequent val tokens (higher-order matches)
and hand-written edge cases, each a corpus of its own plus all of them as one corpus.
The same inputs and NLTK give the same bytes (fixed seed, sorted ids, no timestamps).
"""
import collections
import json
import os
import random
import sys
import warnings

import numpy as np
from nltk import word_tokenize
from nltk.translate.bleu_score import closest_ref_length, corpus_bleu, modified_precision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import Fixture  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "bleu")
DEFAULT_JSON = os.path.join(HERE, "..", "..", "shared", "data", "coco-mini", "annotations",
                            "captions_val2017.json")
BASELINE = "a black dog runs through the water ."


def tokenize(caption):
    return word_tokenize(caption.lower(), preserve_line=True)


def sp(s):
    return s.split()


# (name, [(hypothesis, [references...]), ...]) with whitespace-separated tokens.
EDGE = [
    ("shorter_than_refs", [(sp("a dog on grass"),
                            [sp("a brown dog runs on the green grass"), sp("a dog plays on the grass outside")])]),
    ("longer_than_refs", [(sp("a small brown dog is running fast on the green grass in a park today"),
                           [sp("a dog on grass"), sp("a brown dog runs")])]),
    ("tie_closest_len", [(sp("a b c d e f g h i j k l"), [sp("a b c d e f g h i j k l m"), sp("a b c d e f g h i j k")])]),
    ("tie_closest_len_rev", [(sp("a b c d e f g h i j k l"), [sp("a b c d e f g h i j k"), sp("a b c d e f g h i j k l m")])]),
    ("clip_repeats", [(sp("the the the the the the the"), [sp("the cat is on the mat"), sp("there is a cat on the mat")])]),
    ("clip_repeated_bigrams", [(sp("on the on the on the mat mat"),
                                [sp("the cat is on the mat on the rug"), sp("on the mat the cat on the mat sat")])]),
    ("hyp_len_1", [(sp("dog"), [sp("a dog"), sp("the dog runs")])]),
    ("hyp_len_2", [(sp("a dog"), [sp("a dog runs"), sp("dog a")])]),
    ("hyp_len_3", [(sp("a dog runs"), [sp("a dog runs fast"), sp("a dog runs")])]),
    ("empty_hyp_alone", [([], [sp("a dog runs"), sp("a cat")])]),
    ("empty_hyp_in_corpus", [([], [sp("a dog runs"), sp("a cat")]),
                             (sp("a cat sits on a mat"), [sp("a cat sits on the mat"), sp("the cat on a mat")])]),
    ("zero_matches", [(sp("x y z w v"), [sp("a b c d e"), sp("f g h")])]),
    ("unigrams_only", [(sp("mat the on cat"), [sp("the cat on the mat")])]),
    ("no_4gram", [(sp("the cat sat on a red mat"), [sp("the cat sat on the mat"), sp("a red mat is here")])]),
    ("exact_match", [(sp("a man riding a wave on a surfboard"), [sp("a man riding a wave on a surfboard")])]),
    ("empty_reference", [(sp("a dog"), [[], sp("a dog runs away")]), (sp("x"), [[], sp("y")])]),
    ("one_ref_repeated_ids", [(sp("a a a a a b a a a a"), [sp("a a b a a a a a"), sp("a a a a a a a a a a a a")])]),
    ("nltk_doc_example", [
        (sp("It is a guide to action which ensures that the military always obeys the commands of the party"),
         [sp("It is a guide to action that ensures that the military will forever heed Party commands"),
          sp("It is the guiding principle which guarantees the military forces always being under the command of the Party"),
          sp("It is the practical guide for the army always to heed the directions of the party")]),
        (sp("he read the book because he was interested in world history"),
         [sp("he was interested in world history because he read the book")])]),
]


def nltk_stats(refs_list, hyps):
    st = [0] * 10
    for refs, hyp in zip(refs_list, hyps):
        for n in range(1, 5):
            p = modified_precision(refs, hyp, n)
            st[n - 1] += p.numerator
            st[4 + n - 1] += p.denominator
        st[8] += len(hyp)
        st[9] += closest_ref_length(refs, len(hyp))
    return st


def nltk_bleu(refs_list, hyps):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the zero-precision warning of method0
        for n in range(1, 5):
            out.append(float(corpus_bleu(refs_list, hyps, weights=(1.0 / n,) * n)))
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_JSON
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    refs_by_image = collections.defaultdict(list)
    for a in sorted(data["annotations"], key=lambda a: (a["image_id"], a["id"])):
        refs_by_image[a["image_id"]].append(tokenize(a["caption"]))
    images = sorted(refs_by_image)

    corpora = []
    loo = []
    for i, im in enumerate(images):
        refs = refs_by_image[im]
        k = i % len(refs)
        loo.append((refs[k], refs[:k] + refs[k + 1:]))
    corpora.append(("val_loo", loo))
    base = tokenize(BASELINE)
    corpora.append(("val_baseline", [(base, refs_by_image[im]) for im in images]))

    counts = collections.Counter(t for im in images for r in refs_by_image[im] for t in r)
    val_tokens = sorted(counts)
    frequent = sorted(counts, key=lambda t: (-counts[t], t))[:12]
    rng = random.Random(20240611)
    for name, pool in (("val_random", val_tokens), ("val_random_frequent", frequent)):
        segs = []
        for im in images:
            hyp = [rng.choice(pool) for _ in range(rng.randint(1, 20))]
            segs.append((hyp, refs_by_image[im]))
        corpora.append((name, segs))
    for name, segs in EDGE:
        corpora.append((name, segs))
    corpora.append(("all_edge_cases", [seg for _, segs in EDGE for seg in segs]))

    vocab = sorted({t for _, segs in corpora for hyp, refs in segs for t in hyp + [u for r in refs for u in r]})
    ids = {t: 4 + i for i, t in enumerate(vocab)}

    fx = Fixture()
    fx.add_int("corpora", len(corpora))
    for k, (name, segs) in enumerate(corpora):
        hyps = [h for h, _ in segs]
        refs_list = [r for _, r in segs]
        hyp_off, ref_off, seg_ref = [0], [0], [0]
        hyp_ids, ref_ids = [], []
        for hyp, refs in segs:
            hyp_ids += [ids[t] for t in hyp]
            hyp_off.append(len(hyp_ids))
            for r in refs:
                ref_ids += [ids[t] for t in r]
                ref_off.append(len(ref_ids))
            seg_ref.append(len(ref_off) - 1)
        p = f"c{k}."
        fx.add(p + "name", np.frombuffer(name.encode(), dtype=np.uint8).astype(np.int32))
        fx.add(p + "hyp_ids", np.array(hyp_ids, dtype=np.int32))
        fx.add(p + "hyp_off", np.array(hyp_off, dtype=np.int32))
        fx.add(p + "ref_ids", np.array(ref_ids, dtype=np.int32))
        fx.add(p + "ref_off", np.array(ref_off, dtype=np.int32))
        fx.add(p + "seg_ref", np.array(seg_ref, dtype=np.int32))
        fx.add(p + "stats", np.array(nltk_stats(refs_list, hyps), dtype=np.int32))
        bleu = nltk_bleu(refs_list, hyps)
        fx.add(p + "bleu", np.array(bleu, dtype=np.float64), dtype=np.float64)
        print(f"{name:22s} segments {len(segs):4d}  BLEU-1..4 " + " ".join(f"{b!r}" for b in bleu))
    os.makedirs(OUT, exist_ok=True)
    fx.write(os.path.join(OUT, "bleu.snfx"))


if __name__ == "__main__":
    main()
