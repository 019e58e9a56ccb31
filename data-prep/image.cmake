# Image half of COCO data-prep: the dp_image library (decode, PIL-compatible Lanczos
# resize, save) and the sn-resize tool.
find_package(JPEG REQUIRED)
find_package(PNG REQUIRED)

add_library(dp_image STATIC ${CMAKE_CURRENT_LIST_DIR}/image.c)
target_include_directories(dp_image PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(dp_image PUBLIC shardnet JPEG::JPEG PNG::PNG m)
# Kernel weights must round exactly as PIL's do: no fused multiply-add contraction.
# The 8-lane vectors only pass between static functions of image.c, so GCC's note that
# their ABI differs without AVX (-Wpsabi) concerns no interface.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/image.c PROPERTIES COMPILE_OPTIONS "-ffp-contract=off;-Wno-psabi")

add_executable(sn-resize ${CMAKE_CURRENT_LIST_DIR}/resize_main.c)
target_link_libraries(sn-resize PRIVATE dp_image shardnet)
