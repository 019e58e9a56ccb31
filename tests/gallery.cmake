# The HTML caption gallery of `shardnet caption/eval --html` (src/cli/gallery.c, compiled
# into the test directly since the CLI sources build only the shardnet executable): three
# coco-mini val2017 JPEGs read in place from SN_SHARED_DATA plus one RGB-pixel item. The
# page stays at gallery/test_gallery.html in the build folder; render it with
# tests/scripts/gallery_screenshot.sh to look at it.
add_executable(test_gallery ${CMAKE_CURRENT_LIST_DIR}/test_gallery.c ${PROJECT_SOURCE_DIR}/src/cli/gallery.c)
target_include_directories(test_gallery PRIVATE ${PROJECT_SOURCE_DIR}/src/cli)
target_link_libraries(test_gallery PRIVATE sn_testutil dp_image)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/gallery)
target_compile_definitions(test_gallery PRIVATE
  COCO_VAL_DIR="${SN_SHARED_DATA}/coco-mini/val2017"
  GALLERY_OUT="${CMAKE_CURRENT_BINARY_DIR}/gallery/test_gallery.html")
add_test(NAME test_gallery COMMAND test_gallery)
set_tests_properties(test_gallery PROPERTIES LABELS "unit;gallery" ENVIRONMENT "${SN_TEST_ENV}")
sn_uses_shared_data(test_gallery)
