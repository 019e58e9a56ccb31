# Checkpoints and failures: file validation, stop-and-resume == one go (1 and 2 ranks),
# a killed or frozen rank ends the whole job with the rank named.
sn_test(test_checkpoint SOURCES test_checkpoint.c LABELS badinput)
target_link_libraries(test_checkpoint PRIVATE ${HDF5_C_LIBRARIES})

foreach(np 1 2)
  add_test(NAME resume_np${np} COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/resume.sh $<TARGET_FILE:shardnet_cli>
           ${MPIEXEC_EXECUTABLE} ${SN_MNIST_H5} ${CMAKE_CURRENT_BINARY_DIR}/resume-np${np} ${np})
  set_tests_properties(resume_np${np} PROPERTIES FIXTURES_REQUIRED mnist LABELS "mnist;mpi;checkpoint"
                       ENVIRONMENT "${SN_TEST_ENV}")
endforeach()
foreach(mode kill stall stop)
  add_test(NAME rank_${mode} COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/rank_failure.sh $<TARGET_FILE:shardnet_cli>
           ${MPIEXEC_EXECUTABLE} ${SN_MNIST_H5} ${CMAKE_CURRENT_BINARY_DIR}/rank-${mode} ${mode} 30)
  set_tests_properties(rank_${mode} PROPERTIES FIXTURES_REQUIRED mnist LABELS "mnist;mpi;failure"
                       ENVIRONMENT "${SN_TEST_ENV}")
endforeach()

# The Slurm batch script under a real single-node Slurm (root only: it starts the daemons).
add_test(NAME slurm_requeue COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/slurm_requeue.sh ${PROJECT_SOURCE_DIR}
         $<TARGET_FILE:shardnet_cli> ${SN_MNIST_H5} ${CMAKE_CURRENT_BINARY_DIR}/slurm-requeue)
set_tests_properties(slurm_requeue PROPERTIES FIXTURES_REQUIRED mnist LABELS "mnist;mpi;slurm;checkpoint"
                     ENVIRONMENT "${SN_TEST_ENV}" RUN_SERIAL TRUE SKIP_RETURN_CODE 77)
