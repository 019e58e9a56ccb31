# The real COCO and Flickr8k files that the data tests read in place (never copied into the
# repository). Included by tests/CMakeLists.txt at configure time (a warning when something
# is missing) and run as the shared_data test (cmake -DSHARDNET_DATA=DIR -P this file),
# the fixture every data test requires: without the files those tests are not run, and
# this one fails naming the path and how to point the build at the data.
set(SN_SHARED_DATA_FILES
  coco-mini/val2017
  coco-mini/train2017
  coco-mini/annotations/captions_val2017.json
  coco-mini/annotations/captions_val2017_full.json
  coco-mini/annotations/captions_train2017.json
  flickr8k-1000/images
  flickr8k-1000/captions.json)

# sn_shared_data_missing(DIR OUT): OUT = the first missing entry of DIR, or empty.
function(sn_shared_data_missing dir out)
  foreach(f ${SN_SHARED_DATA_FILES})
    if(NOT EXISTS "${dir}/${f}")
      set(${out} "${dir}/${f}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

set(SN_SHARED_DATA_HOWTO
    "The data tests read coco-mini/ and flickr8k-1000/ in place: configure with -DSHARDNET_DATA=DIR (or set SHARDNET_DATA=DIR in the environment of the first configure), DIR holding both folders")

if(CMAKE_SCRIPT_MODE_FILE)
  sn_shared_data_missing("${SHARDNET_DATA}" _missing)
  if(_missing)
    message(FATAL_ERROR "shared data: ${_missing} not found. ${SN_SHARED_DATA_HOWTO}.")
  endif()
  message(STATUS "shared data: ${SHARDNET_DATA}")
endif()
