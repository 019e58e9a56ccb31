# Sequence and encoder layers (include/shardnet/sequence.h): PyTorch parity from the
# committed fixtures of tests/gen_seq_fixtures.py, finite-difference checks (label
# gradcheck), thread invariance. bench_lstm and bench_caption are built, not run by ctest.
sn_test(test_seq_lstm SOURCES test_seq_lstm.c)
add_executable(bench_lstm bench_lstm.c)
target_link_libraries(bench_lstm PRIVATE sn_testutil)
add_executable(bench_caption bench_caption.c)
target_link_libraries(bench_caption PRIVATE sn_testutil)
sn_test(test_seq_layers SOURCES test_seq_layers.c)
sn_test(test_seq_gradcheck SOURCES test_seq_gradcheck.c LABELS gradcheck)
