# Bad input, systematically: a generated corpus of broken data files and checkpoints
# (gen_bad_h5) that `shardnet train` and `shardnet eval` must each refuse with one error
# line naming the file and the problem, exit 1 or 2, and no output written; on 1 rank and,
# for a few cases, on 2 (every rank must end). Sorted after mnist.cmake for SN_MNIST_H5.
add_executable(gen_bad_h5 gen_bad_h5.c)
target_link_libraries(gen_bad_h5 PRIVATE shardnet ${HDF5_C_LIBRARIES})

foreach(group layout values files resume state checkpoint np2)
  add_test(NAME bad_inputs_${group} COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/bad_inputs.sh
           $<TARGET_FILE:shardnet_cli> $<TARGET_FILE:gen_bad_h5> ${MPIEXEC_EXECUTABLE} ${SN_MNIST_H5}
           ${CMAKE_CURRENT_BINARY_DIR}/bad-inputs-${group} ${group})
  set_tests_properties(bad_inputs_${group} PROPERTIES FIXTURES_REQUIRED mnist LABELS "badinput;mnist"
                       ENVIRONMENT "${SN_TEST_ENV};OMP_NUM_THREADS=1")
endforeach()
