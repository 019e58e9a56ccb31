# COCO packing: captions JSON + image folder + vocabulary -> coco_<split>.h5 (sn-pack),
# with the text library (tokenizer, vocabulary, JSON) and the image library (decode,
# PIL-compatible resize) of text.cmake and image.cmake.
add_executable(sn_pack ${CMAKE_CURRENT_LIST_DIR}/pack_main.c)
set_target_properties(sn_pack PROPERTIES OUTPUT_NAME sn-pack)
target_link_libraries(sn_pack PRIVATE sn_text dp_image shardnet)
