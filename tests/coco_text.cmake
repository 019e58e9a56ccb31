# COCO caption text: tokenizer parity with NLTK, vocabulary parity and unit tests,
# sn-vocab under 1/2/4 MPI ranks, sn-vocab error handling. The captions JSON is read
# from SN_SHARED_DATA (never copied into the repository).
set(SN_COCO_VAL_JSON ${SN_SHARED_DATA}/coco-mini/annotations/captions_val2017_full.json)
# The reference recipe's training set: the union of two captions files.
set(SN_UNION_JSONS --captions ${SN_SHARED_DATA}/flickr8k-1000/captions.json
                   --captions ${SN_SHARED_DATA}/coco-mini/annotations/captions_train2017.json)

# sn_test() takes no command-line arguments; these tests need the JSON path.
function(sn_coco_text_test name)
  cmake_parse_arguments(T "" "" "SOURCES;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE sn_testutil sn_text)
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "unit;coco_text" ENVIRONMENT "${SN_TEST_ENV}")
endfunction()

sn_coco_text_test(test_coco_tokenize SOURCES test_coco_tokenize.c ARGS ${SN_COCO_VAL_JSON})
sn_coco_text_test(test_coco_vocab SOURCES test_coco_vocab.c ARGS ${SN_COCO_VAL_JSON})

# sn-vocab's command-line behaviour and error handling.
add_test(NAME coco_vocab_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/coco_vocab_cli.sh
         $<TARGET_FILE:sn_vocab> ${MPIEXEC_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/coco_text
         ${CMAKE_CURRENT_BINARY_DIR}/coco_vocab_cli)
set_tests_properties(coco_vocab_cli PROPERTIES LABELS "coco_text;mpi" ENVIRONMENT "${SN_TEST_ENV};OMP_NUM_THREADS=1"
                                               PROCESSORS 2)

# sn-vocab under 1, 2 and 4 ranks writes identical files, equal to NLTK's vocabulary.
set(_cv ${CMAKE_CURRENT_BINARY_DIR}/coco_vocab_mpi)
add_test(NAME coco_vocab_mpi_clean COMMAND ${CMAKE_COMMAND} -E rm -rf ${_cv})
set_tests_properties(coco_vocab_mpi_clean PROPERTIES FIXTURES_SETUP coco_vocab_clean LABELS "coco_text")
add_test(NAME coco_vocab_mpi_mkdir COMMAND ${CMAKE_COMMAND} -E make_directory ${_cv})
set_tests_properties(coco_vocab_mpi_mkdir PROPERTIES FIXTURES_SETUP coco_vocab_dir FIXTURES_REQUIRED coco_vocab_clean
                                                     LABELS "coco_text")
foreach(np_threads 1:2 2:1 4:1)
  string(REPLACE ":" ";" _nt ${np_threads})
  list(GET _nt 0 np)
  list(GET _nt 1 nt)
  sn_mpi_test(coco_vocab_np${np} ${np} $<TARGET_FILE:sn_vocab> --captions ${SN_COCO_VAL_JSON} --threads ${nt}
              --quiet --out ${_cv}/np${np}.txt --h5 ${_cv}/np${np}.h5)
  set_tests_properties(coco_vocab_np${np} PROPERTIES FIXTURES_SETUP coco_vocab_runs FIXTURES_REQUIRED coco_vocab_dir
                                                     LABELS "mpi;coco_text")
endforeach()
add_test(NAME coco_vocab_mpi_same COMMAND bash -c
         "cmp ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/coco_text/val2017_vocab_t4.txt np1.txt && cmp np1.txt np2.txt && cmp np1.txt np4.txt && cmp np1.h5 np2.h5 && cmp np1.h5 np4.h5 && echo 'identical, equal to NLTK'"
         WORKING_DIRECTORY ${_cv})
set_tests_properties(coco_vocab_mpi_same PROPERTIES FIXTURES_REQUIRED coco_vocab_runs LABELS "mpi;coco_text")

# sn-vocab over the union of two files (repeated --captions) under 1, 2 and 3 ranks: the
# same bytes, equal to NLTK's vocabulary of the union (fixtures/coco_text/union_t4.txt,
# 1,173 words + 4 specials = 1,177 ids, as the PyTorch reference finds).
foreach(np_threads 1:2 2:1 3:1)
  string(REPLACE ":" ";" _nt ${np_threads})
  list(GET _nt 0 np)
  list(GET _nt 1 nt)
  sn_mpi_test(coco_vocab_union_np${np} ${np} $<TARGET_FILE:sn_vocab> ${SN_UNION_JSONS} --threads ${nt}
              --quiet --out ${_cv}/union_np${np}.txt --h5 ${_cv}/union_np${np}.h5)
  set_tests_properties(coco_vocab_union_np${np} PROPERTIES FIXTURES_SETUP coco_vocab_union_runs
    FIXTURES_REQUIRED coco_vocab_dir LABELS "mpi;coco_text"
    PASS_REGULAR_EXPRESSION "5400 captions, 1173 words with count >= 4 \\+ 4 special tokens = 1177")
endforeach()
add_test(NAME coco_vocab_union_same COMMAND bash -c
         "cmp ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/coco_text/union_t4.txt union_np1.txt && cmp union_np1.txt union_np2.txt && cmp union_np1.txt union_np3.txt && cmp union_np1.h5 union_np2.h5 && cmp union_np1.h5 union_np3.h5 && echo 'identical, equal to NLTK, 1177 ids'"
         WORKING_DIRECTORY ${_cv})
set_tests_properties(coco_vocab_union_same PROPERTIES FIXTURES_REQUIRED coco_vocab_union_runs LABELS "mpi;coco_text")
sn_uses_shared_data(test_coco_tokenize test_coco_vocab coco_vocab_np1 coco_vocab_np2 coco_vocab_np4
                    coco_vocab_union_np1 coco_vocab_union_np2 coco_vocab_union_np3)
