# Tests of the layer library: PyTorch parity on committed fixtures (tests/gen_fixtures.py),
# finite-difference gradient checks (label gradcheck), thread invariance, Adadelta.
# bench_layers is built but not run by ctest (timings are not tests).
set(SN_LAYER_TEST_UTIL layer_util.c)
sn_test(test_parity    SOURCES test_parity.c    ${SN_LAYER_TEST_UTIL} LABELS parity)
sn_test(test_adadelta   SOURCES test_adadelta.c  ${SN_LAYER_TEST_UTIL} LABELS parity)
sn_test(test_gradcheck  SOURCES test_gradcheck.c ${SN_LAYER_TEST_UTIL} LABELS gradcheck)
sn_test(test_threads    SOURCES test_threads.c   ${SN_LAYER_TEST_UTIL} LABELS threads)

# Conv2d timing with 1 and 2 threads: built, not a ctest entry.
add_executable(bench_layers bench_layers.c layer_util.c)
target_link_libraries(bench_layers PRIVATE sn_testutil)
