# The IDX parser is a library of its own so that the fuzz harness (tests/fuzz) links it too.
add_library(sn_idx STATIC ${CMAKE_CURRENT_LIST_DIR}/idx.c)
target_include_directories(sn_idx PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(sn_idx PUBLIC shardnet)

add_executable(sn-mnist-prep ${CMAKE_CURRENT_LIST_DIR}/mnist_prep.c)
target_link_libraries(sn-mnist-prep PRIVATE sn_idx shardnet)
