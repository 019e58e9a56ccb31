add_executable(sn-mnist-prep ${CMAKE_CURRENT_LIST_DIR}/mnist_prep.c)
target_link_libraries(sn-mnist-prep PRIVATE shardnet)
