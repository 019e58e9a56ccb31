# sn-pack (COCO captions JSON + images + vocabulary -> coco_<split>.h5): coco-mini val2017
# packed under 1, 2 and 4 ranks (several rounds of collective writes) gives the same file
# byte for byte; its contents against NLTK's tokens and PIL's pixels; bad inputs, --strict
# and usage in coco_pack_cli.sh. The data are read in place from SN_SHARED_DATA.
set(SN_PACK_DATA ${SN_SHARED_DATA})
set(SN_PACK_JSON ${SN_PACK_DATA}/coco-mini/annotations/captions_val2017.json)
set(SN_PACK_IMAGES ${SN_PACK_DATA}/coco-mini/val2017)
set(_cp ${CMAKE_CURRENT_BINARY_DIR}/coco_pack)
set(SN_PACK_N 159)
set(SN_PACK_CAPTIONS 795)
# Sanitizer and Debug builds resize about 10x slower: there the same tests run on the first
# 48 images of the JSON (and their captions), written at configure time, so that every
# ctest entry stays well under 20 s.
if(SN_SHARED_DATA_OK AND (SHARDNET_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug"))
  set(SN_PACK_N 48)
  file(READ ${SN_PACK_JSON} _j)
  string(JSON _n_ann LENGTH "${_j}" annotations)
  set(_imgs "")
  set(_ids "")
  math(EXPR _last "${SN_PACK_N} - 1")
  foreach(i RANGE 0 ${_last})
    string(JSON _im GET "${_j}" images ${i})
    string(JSON _id GET "${_im}" id)
    if(i GREATER 0)
      string(APPEND _imgs ",\n")
    endif()
    string(APPEND _imgs "${_im}")
    list(APPEND _ids ${_id})
  endforeach()
  # strings, not lists: a caption may hold ; or brackets
  set(_anns "")
  set(SN_PACK_CAPTIONS 0)
  math(EXPR _last "${_n_ann} - 1")
  foreach(i RANGE 0 ${_last})
    string(JSON _an GET "${_j}" annotations ${i})
    string(JSON _iid GET "${_an}" image_id)
    if(_iid IN_LIST _ids)
      if(SN_PACK_CAPTIONS GREATER 0)
        string(APPEND _anns ",\n")
      endif()
      string(APPEND _anns "${_an}")
      math(EXPR SN_PACK_CAPTIONS "${SN_PACK_CAPTIONS} + 1")
    endif()
  endforeach()
  set(SN_PACK_JSON ${CMAKE_CURRENT_BINARY_DIR}/coco_pack_val2017_first${SN_PACK_N}.json)
  file(WRITE ${SN_PACK_JSON} "{\"images\": [${_imgs}],\n\"annotations\": [${_anns}]}\n")
endif()

add_executable(test_coco_pack ${CMAKE_CURRENT_LIST_DIR}/test_coco_pack.c)
target_link_libraries(test_coco_pack PRIVATE sn_testutil sn_text)

add_test(NAME coco_pack_clean COMMAND ${CMAKE_COMMAND} -E rm -rf ${_cp})
set_tests_properties(coco_pack_clean PROPERTIES FIXTURES_SETUP coco_pack_clean LABELS "coco_pack")
# The vocabulary of the same captions, by sn-vocab (threshold 4).
add_test(NAME coco_pack_vocab COMMAND ${CMAKE_COMMAND} -E env ${SN_TEST_ENV}
         bash -c "mkdir -p ${_cp} && $<TARGET_FILE:sn_vocab> --captions ${SN_PACK_JSON} --quiet --out ${_cp}/vocab.txt")
set_tests_properties(coco_pack_vocab PROPERTIES FIXTURES_SETUP coco_pack_vocab FIXTURES_REQUIRED coco_pack_clean
                                                LABELS "coco_pack")

# ranks:threads:images per rank per round
foreach(run 1:2:32 2:1:8 4:1:5)
  string(REPLACE ":" ";" _r ${run})
  list(GET _r 0 np)
  list(GET _r 1 nt)
  list(GET _r 2 nb)
  sn_mpi_test(coco_pack_np${np} ${np} $<TARGET_FILE:sn_pack> --captions ${SN_PACK_JSON} --images ${SN_PACK_IMAGES}
              --vocab ${_cp}/vocab.txt --out ${_cp}/np${np}.h5 --threads ${nt} --batch ${nb} --no-progress)
  set_tests_properties(coco_pack_np${np} PROPERTIES FIXTURES_REQUIRED coco_pack_vocab FIXTURES_SETUP coco_pack_runs
    LABELS "mpi;coco_pack"
    PASS_REGULAR_EXPRESSION "packed ${SN_PACK_N} of ${SN_PACK_N} images \\(256x256\\) and ${SN_PACK_CAPTIONS} captions \\(max_len [0-9]+, 0 truncated\\)")
endforeach()
# Identical files, byte for byte (no object timestamps), and h5diff finds no difference.
add_test(NAME coco_pack_identical COMMAND bash -c
         "cmp np1.h5 np2.h5 && cmp np1.h5 np4.h5 && h5diff -c np1.h5 np2.h5 && h5diff -c np1.h5 np4.h5 && echo 'byte-identical'"
         WORKING_DIRECTORY ${_cp})
set_tests_properties(coco_pack_identical PROPERTIES FIXTURES_REQUIRED coco_pack_runs LABELS "mpi;coco_pack")
# The 4-rank file decodes to NLTK's tokens and PIL's pixels.
add_test(NAME test_coco_pack COMMAND test_coco_pack ${_cp}/np4.h5 ${SN_PACK_JSON}
         ${CMAKE_CURRENT_LIST_DIR}/fixtures/coco_text/val2017_tokens.txt ${_cp}/vocab.txt
         ${CMAKE_CURRENT_LIST_DIR}/fixtures/coco_image/manifest.txt)
set_tests_properties(test_coco_pack PROPERTIES FIXTURES_REQUIRED coco_pack_runs LABELS "unit;coco_pack"
                                               ENVIRONMENT "${SN_TEST_ENV}")

# Bad inputs (missing, truncated, non-image files, empty caption, caption without image,
# malformed JSON), skipped or fatal with --strict, no file left behind; usage; progress.
add_test(NAME coco_pack_cli COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/coco_pack_cli.sh $<TARGET_FILE:sn_pack>
         ${MPIEXEC_EXECUTABLE} ${SN_PACK_IMAGES} ${CMAKE_CURRENT_LIST_DIR}/fixtures ${CMAKE_CURRENT_BINARY_DIR}/coco_pack_cli)
set_tests_properties(coco_pack_cli PROPERTIES LABELS "mpi;coco_pack" PROCESSORS 2
                                              ENVIRONMENT "${SN_TEST_ENV};OMP_NUM_THREADS=1")

# A vocabulary of several captions files (sn-vocab with repeated --captions: the reference
# recipe's flickr8k-1000 + coco-mini train2017, threshold 4) holds union counts; sn-pack
# takes it for each of the files, --threshold 4 included (every kept count is >= 4), and
# stores its 1,177 ids unchanged. flickr8k-1000 is packed small (64x64, DCT-scaled decoding):
# the pixels do not matter here, and the test stays short in sanitizer builds.
set(_cu ${CMAKE_CURRENT_BINARY_DIR}/coco_pack_union)
set(_flickr ${SN_PACK_DATA}/flickr8k-1000)
set(_train ${SN_PACK_DATA}/coco-mini/annotations/captions_train2017.json)
add_test(NAME coco_pack_union COMMAND ${CMAKE_COMMAND} -E env ${SN_TEST_ENV} OMP_NUM_THREADS=1 bash -c "\
set -e; rm -rf ${_cu}; mkdir -p ${_cu}; cd ${_cu}
$<TARGET_FILE:sn_vocab> --captions ${_flickr}/captions.json --captions ${_train} --quiet --out union.txt
${MPIEXEC_EXECUTABLE} -n 2 --oversubscribe $<TARGET_FILE:sn_pack> --captions ${_train} \
  --images ${SN_PACK_DATA}/coco-mini/train2017 --vocab union.txt --threshold 4 --out train.h5 --no-progress
$<TARGET_FILE:sn_pack> --captions ${_flickr}/captions.json --images ${_flickr}/images --vocab union.txt \
  --threshold 4 --size 64 --fast-decode --threads 2 --out flickr.h5 --no-progress
for f in train flickr; do
  h5dump -H -d vocab $f.h5 | grep -q 'SIMPLE { ( 1177 ) / ( 1177 ) }'
  h5dump -a vocab_threshold $f.h5 | grep -q '(0): 4'
  [ \"$(h5dump -y -w 0 -d vocab_counts $f.h5 | sed -n '/DATA {/{n;p}' | tr -d ' ')\" = \"$(cut -f2 union.txt | paste -sd, -)\" ]
done
echo 'union vocabulary accepted for both files'")
set_tests_properties(coco_pack_union PROPERTIES LABELS "mpi;coco_pack" PROCESSORS 2
  PASS_REGULAR_EXPRESSION "packed 80 of 80 images \\(256x256\\) and 400 captions.*packed 1000 of 1000 images \\(64x64\\) and 5000 captions.*union vocabulary accepted for both files")
sn_uses_shared_data(coco_pack_vocab coco_pack_np1 coco_pack_np2 coco_pack_np4 test_coco_pack coco_pack_cli
                    coco_pack_union)
