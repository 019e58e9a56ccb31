# libFuzzer harnesses (only with -DSHARDNET_FUZZ=ON and clang): the IDX parser of
# sn-mnist-prep and the HDF5 checkpoint and MNIST readers. jobs/fuzz.sh builds and runs them.
add_executable(fuzz_idx ${CMAKE_CURRENT_LIST_DIR}/fuzz_idx.c)
target_link_libraries(fuzz_idx PRIVATE sn_idx)
target_link_options(fuzz_idx PRIVATE -fsanitize=fuzzer)

add_executable(fuzz_checkpoint ${CMAKE_CURRENT_LIST_DIR}/fuzz_checkpoint.c)
target_link_libraries(fuzz_checkpoint PRIVATE shardnet)
target_link_options(fuzz_checkpoint PRIVATE -fsanitize=fuzzer)
