# The captioning model (include/shardnet/caption.h): one training step against PyTorch
# (committed fixtures of tests/gen_caption_fixtures.py), thread invariance, finite
# differences of the loss. One executable, one ctest entry per group so that each stays
# short under the sanitizers.
add_executable(test_caption_model test_caption_model.c)
target_link_libraries(test_caption_model PRIVATE sn_testutil)
foreach(group parity threads gradcheck)
  add_test(NAME test_caption_model_${group} COMMAND test_caption_model ${group})
  set(_labels unit)
  if(group STREQUAL "gradcheck")
    list(APPEND _labels gradcheck)
  endif()
  set_tests_properties(test_caption_model_${group} PROPERTIES LABELS "${_labels}" ENVIRONMENT "${SN_TEST_ENV}")
endforeach()
