# Tests of the layer library: PyTorch parity on committed fixtures (tests/gen_fixtures.py),
# finite-difference gradient checks (label gradcheck), thread invariance, Adadelta.
# bench_layers is built but not run by ctest (timings are not tests).
set(SN_LAYER_TEST_UTIL layer_util.c)
sn_test(test_parity    SOURCES test_parity.c    ${SN_LAYER_TEST_UTIL} LABELS parity)
sn_test(test_adadelta   SOURCES test_adadelta.c  ${SN_LAYER_TEST_UTIL} LABELS parity)
sn_test(test_gradcheck  SOURCES test_gradcheck.c ${SN_LAYER_TEST_UTIL} LABELS gradcheck)
sn_test(test_threads    SOURCES test_threads.c   ${SN_LAYER_TEST_UTIL} LABELS threads)

# The same programs with OpenBLAS's AVX-512 kernels (what the shardnet CLI selects on a CPU
# OpenBLAS does not recognise), whose float32 sums round differently from the generic SSE3
# ones: results must pass on both. A program skips itself (exit 77) where the CPU lacks
# AVX-512 or OpenBLAS cannot switch kernels.
foreach(t test_parity test_adadelta test_gradcheck test_threads)
  get_test_property(${t} LABELS t_labels)
  add_test(NAME ${t}_avx512 COMMAND ${t})
  set_tests_properties(${t}_avx512 PROPERTIES LABELS "${t_labels};avx512" SKIP_RETURN_CODE 77
                                              ENVIRONMENT "${SN_TEST_ENV};OPENBLAS_CORETYPE=SkylakeX")
endforeach()

# Conv2d timing with 1 and 2 threads: built, not a ctest entry.
add_executable(bench_layers bench_layers.c layer_util.c)
target_link_libraries(bench_layers PRIVATE sn_testutil)
