# COCO caption text: tokenizer parity with NLTK, vocabulary parity and unit tests,
# sn-vocab under 1/2/4 MPI ranks, sn-vocab error handling. The captions JSON is read
# from the shared data folder next to the repository (never copied into it).
set(SN_COCO_VAL_JSON ${PROJECT_SOURCE_DIR}/../shared/data/coco-mini/annotations/captions_val2017_full.json)

# sn_test() takes no command-line arguments; these tests need the JSON path.
function(sn_coco_text_test name)
  cmake_parse_arguments(T "" "" "SOURCES;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE sn_testutil sn_text)
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "unit;coco_text" ENVIRONMENT "${SN_TEST_ENV}")
endfunction()

sn_coco_text_test(test_coco_tokenize SOURCES test_coco_tokenize.c ARGS ${SN_COCO_VAL_JSON})
