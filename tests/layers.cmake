# Tests of the layer library: PyTorch parity on committed fixtures (tests/gen_fixtures.py),
# finite-difference gradient checks (label gradcheck), thread invariance, Adadelta.
# bench_layers is built but not run by ctest (timings are not tests).
set(SN_LAYER_TEST_UTIL layer_util.c)
sn_test(test_parity    SOURCES test_parity.c    ${SN_LAYER_TEST_UTIL} LABELS parity)
