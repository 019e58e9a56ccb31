# Captioning training, evaluation and the caption command on real COCO images and captions
# (tests/caption_train.sh says what each part checks); the data are read in place from
# SN_SHARED_DATA (tests/CMakeLists.txt).
foreach(mode equivalence overfit errors)
  add_test(NAME caption_${mode} COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/caption_train.sh ${mode}
           $<TARGET_FILE:shardnet_cli> $<TARGET_FILE:sn_vocab> $<TARGET_FILE:sn_pack> ${MPIEXEC_EXECUTABLE}
           ${SN_SHARED_DATA} ${CMAKE_CURRENT_BINARY_DIR}/caption-${mode})
  set(_labels "caption;mpi")
  if(mode STREQUAL "overfit")
    list(APPEND _labels slow)   # 750 steps: minutes under the sanitizers
  endif()
  set_tests_properties(caption_${mode} PROPERTIES LABELS "${_labels}" ENVIRONMENT "${SN_TEST_ENV}")
endforeach()

# jobs/caption.sbatch on a real single-node Slurm cluster
add_test(NAME slurm_caption COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/slurm_caption.sh ${PROJECT_SOURCE_DIR}
         $<TARGET_FILE:shardnet_cli> ${SN_SHARED_DATA} ${CMAKE_CURRENT_BINARY_DIR}/slurm-caption)
set_tests_properties(slurm_caption PROPERTIES LABELS "caption;mpi;slurm" SKIP_RETURN_CODE 77
                     ENVIRONMENT "${SN_TEST_ENV}")
sn_uses_shared_data(caption_equivalence caption_overfit caption_errors slurm_caption)
