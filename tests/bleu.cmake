# Corpus BLEU (include/shardnet/bleu.h) against NLTK's corpus_bleu on the committed
# fixtures of tests/gen_bleu_fixtures.py (coco-mini val captions and edge cases).
sn_test(test_bleu SOURCES test_bleu.c LABELS bleu)
