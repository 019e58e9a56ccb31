# Image half of COCO data-prep: the dp_image library against PIL fixtures and coco-mini,
# and the sn-resize tool under 1, 2 and 4 ranks.
set(SN_COCO_MINI ${SN_SHARED_DATA}/coco-mini)

sn_test(test_coco_image SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_coco_image.c)
target_link_libraries(test_coco_image PRIVATE dp_image)
target_compile_definitions(test_coco_image PRIVATE COCO_MINI_DIR="${SN_COCO_MINI}")
# Same executable, larger groups as their own ctest entries (each well under 20 s).
add_test(NAME test_coco_image_coco COMMAND test_coco_image coco)
set_tests_properties(test_coco_image_coco PROPERTIES LABELS "unit" ENVIRONMENT "${SN_TEST_ENV}")
foreach(shard 0 1 2 3)
  add_test(NAME test_coco_image_all_${shard} COMMAND test_coco_image coco-all ${shard} 4)
  set_tests_properties(test_coco_image_all_${shard} PROPERTIES LABELS "unit" ENVIRONMENT "${SN_TEST_ENV}")
endforeach()

# libjpeg-turbo's own cost per image (the floor under sn-resize, sn-pack and PIL): a
# benchmark, built and not run.
add_executable(bench_jpeg_decode ${CMAKE_CURRENT_LIST_DIR}/bench_jpeg_decode.c)
target_link_libraries(bench_jpeg_decode PRIVATE dp_image)

# ---- sn-resize ---------------------------------------------------------------------
# An input folder of links: every 8th coco-mini val2017 image, generated edge cases
# (grayscale, CMYK, PNG named .jpg, alpha, palette, 4:2:0, progressive), two unreadable
# files and a text file the tool must ignore. Nothing is copied.
set(SN_RESIZE_IN ${CMAKE_CURRENT_BINARY_DIR}/coco_image_in)
set(SN_RESIZE_OUT ${CMAKE_CURRENT_BINARY_DIR}/coco_image_out)
file(REMOVE_RECURSE ${SN_RESIZE_IN})
file(MAKE_DIRECTORY ${SN_RESIZE_IN})
file(GLOB _sn_coco_val ${SN_COCO_MINI}/val2017/*.jpg)
list(SORT _sn_coco_val)
list(LENGTH _sn_coco_val _sn_n)
set(_sn_linked 0)
foreach(_i RANGE 0 ${_sn_n} 8)
  if(_i LESS _sn_n)
    list(GET _sn_coco_val ${_i} _f)
    get_filename_component(_name ${_f} NAME)
    file(CREATE_LINK ${_f} ${SN_RESIZE_IN}/${_name} SYMBOLIC)
    math(EXPR _sn_linked "${_sn_linked} + 1")
  endif()
endforeach()
foreach(_name gray.jpg cmyk.jpg png_named.jpg rgba.png palette.png rgb420.jpg progressive.jpg
              truncated.jpg not_an_image.jpg)
  file(CREATE_LINK ${CMAKE_CURRENT_LIST_DIR}/fixtures/coco_image/${_name} ${SN_RESIZE_IN}/${_name} SYMBOLIC)
endforeach()
file(WRITE ${SN_RESIZE_IN}/README.txt "not an image: sn-resize lists only .jpg .jpeg .png\n")
math(EXPR SN_RESIZE_GOOD "${_sn_linked} + 7")
math(EXPR SN_RESIZE_ALL "${_sn_linked} + 9")

add_test(NAME sn_resize_clean COMMAND ${CMAKE_COMMAND} -E rm -rf ${SN_RESIZE_OUT})
set_tests_properties(sn_resize_clean PROPERTIES FIXTURES_SETUP sn_resize_clean LABELS mpi)
foreach(np 1 2 4)
  sn_mpi_test(sn_resize_np${np} ${np} $<TARGET_FILE:sn-resize> --in ${SN_RESIZE_IN}
              --out ${SN_RESIZE_OUT}/np${np} --no-progress)
  set_tests_properties(sn_resize_np${np} PROPERTIES
    FIXTURES_REQUIRED sn_resize_clean FIXTURES_SETUP sn_resize_out
    PASS_REGULAR_EXPRESSION "resized ${SN_RESIZE_GOOD} of ${SN_RESIZE_ALL} images to 256x256 .*skipped 2 unreadable")
endforeach()
# The three runs wrote the same files, byte for byte, and each is a complete image.
add_test(NAME sn_resize_identical COMMAND ${CMAKE_COMMAND} -DMODE=identical -DOUT=${SN_RESIZE_OUT}
         -DCOUNT=${SN_RESIZE_GOOD} -P ${CMAKE_CURRENT_LIST_DIR}/scripts/coco_image_resize_check.cmake)
set_tests_properties(sn_resize_identical PROPERTIES FIXTURES_REQUIRED sn_resize_out LABELS mpi)
# --strict under 2 ranks: exit 1 without hanging, no partial or temporary file; usage errors.
add_test(NAME sn_resize_strict COMMAND ${CMAKE_COMMAND} -DMODE=strict -DMPIEXEC=${MPIEXEC_EXECUTABLE}
         -DTOOL=$<TARGET_FILE:sn-resize> -DIN=${SN_RESIZE_IN} -DOUT=${SN_RESIZE_OUT}/strict
         -P ${CMAKE_CURRENT_LIST_DIR}/scripts/coco_image_resize_check.cmake)
set_tests_properties(sn_resize_strict PROPERTIES LABELS mpi PROCESSORS 2
                     ENVIRONMENT "${SN_TEST_ENV};OMP_NUM_THREADS=1")
sn_uses_shared_data(test_coco_image test_coco_image_coco test_coco_image_all_0 test_coco_image_all_1
                    test_coco_image_all_2 test_coco_image_all_3 sn_resize_np1 sn_resize_np2 sn_resize_np4
                    sn_resize_strict)
