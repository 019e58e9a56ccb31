# The captioning model (include/shardnet/caption.h): one training step against PyTorch
# (committed fixture of tests/gen_caption_fixtures.py), thread invariance, finite
# differences of the loss, argument errors.
sn_test(test_caption_model SOURCES test_caption_model.c LABELS gradcheck)
