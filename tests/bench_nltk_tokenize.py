#!/usr/bin/python3
"""Throughput of the reference tokenizer, nltk.word_tokenize(caption.lower(),
preserve_line=True), over the captions of a COCO captions JSON; the counterpart of
sn-tokenize-bench (jobs/bench-tokenize.sh runs both). A benchmark, not a test.
    /usr/bin/python3 tests/bench_nltk_tokenize.py FILE.json [repeats]
"""
import json
import sys
import time

from nltk.tokenize import word_tokenize


def main():
    path = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with open(path, encoding="utf-8") as f:
        caps = [a["caption"] for a in json.load(f)["annotations"]]
    best, tokens = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        tokens = sum(len(word_tokenize(c.lower(), preserve_line=True)) for c in caps)
        best = min(best, time.perf_counter() - t0)
    print(f"NLTK word_tokenize: {len(caps)} captions, {tokens} tokens, best of {repeats}: "
          f"{best:.4f} s, {len(caps) / best:.0f} captions/s")


if __name__ == "__main__":
    main()
