# COCO caption text: tokenizer, token counting / vocabulary, COCO JSON loading (library
# sn_text, used by sn-vocab and the later caption packer) and the sn-vocab tool.
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)

add_library(sn_text STATIC
  ${CMAKE_CURRENT_LIST_DIR}/unicode.c
  ${CMAKE_CURRENT_LIST_DIR}/tokenize.c
  ${CMAKE_CURRENT_LIST_DIR}/vocab.c
  ${CMAKE_CURRENT_LIST_DIR}/coco_json.c)
target_include_directories(sn_text PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(sn_text PUBLIC shardnet PkgConfig::CJSON)

add_executable(sn_vocab ${CMAKE_CURRENT_LIST_DIR}/vocab_main.c)
set_target_properties(sn_vocab PROPERTIES OUTPUT_NAME sn-vocab)
target_link_libraries(sn_vocab PRIVATE sn_text)

# Benchmark of the tokenizer alone (jobs/bench-tokenize.sh compares it with NLTK).
add_executable(sn_tokenize_bench ${CMAKE_CURRENT_LIST_DIR}/tokenize_bench.c)
set_target_properties(sn_tokenize_bench PROPERTIES OUTPUT_NAME sn-tokenize-bench)
target_link_libraries(sn_tokenize_bench PRIVATE sn_text)
