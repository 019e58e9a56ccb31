#!/usr/bin/env bash
# coco_pack_cli.sh: sn-pack as a command. A small broken set (links to coco-mini images and
# to the broken image fixtures, a JSON that lists a missing image, a truncated JPEG, a
# file that is no image, an image without captions, an empty caption and a caption
# without image): each bad input reported with its file name and reason, skipped and
# counted by default (the same file under 1 and 2 ranks), fatal with --strict under 1 or 2
# ranks, never leaving a file behind; malformed JSON; usage; progress lines. Run by ctest:
#   coco_pack_cli.sh SN_PACK MPIEXEC COCO_IMAGE_DIR FIXTURE_DIR WORK_DIR
# Must not touch anything outside WORK_DIR.
set -u
pack=$1 mpiexec=$2 coco=$3 fx=$4 work=$5
rm -rf "$work" && mkdir -p "$work/img" && cd "$work" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() {  # expect RC PATTERN CMD...: exit status RC and PATTERN (grep -E) in stdout+stderr
  local want=$1 pat=$2; shift 2
  "$@" > out.log 2>&1
  local rc=$?
  [ "$rc" -eq "$want" ] || { fail "exit $rc, expected $want: $*"; sed 's/^/    /' out.log; }
  grep -Eq -- "$pat" out.log || { fail "no /$pat/ in output of: $*"; sed 's/^/    /' out.log; }
}
no_outputs() {
  for f in "$@"; do [ ! -e "$f" ] || fail "$f exists after a failure"; done
  ! ls ./*.tmp.* > /dev/null 2>&1 || fail "temporary files left: $(ls ./*.tmp.*)"
}

ln -s "$coco/000000000139.jpg" img/a.jpg
ln -s "$coco/000000000802.jpg" img/b.jpg
ln -s "$coco/000000011813.jpg" img/c.jpg
ln -s "$fx/coco_image/truncated.jpg" img/trunc.jpg
ln -s "$fx/coco_image/not_an_image.jpg" img/notimg.jpg
vocab=$fx/coco_text/val2017_vocab_t4.txt
cat > bad.json <<'JSON'
{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "missing.jpg"},
            {"id": 3, "file_name": "trunc.jpg"}, {"id": 4, "file_name": "b.jpg"},
            {"id": 5, "file_name": "notimg.jpg"}, {"id": 6, "file_name": "c.jpg"}],
 "annotations": [
  {"image_id": 1, "id": 10, "caption": "A dog on a couch."},
  {"image_id": 2, "id": 11, "caption": "A cat."},
  {"image_id": 3, "id": 12, "caption": "A truncated picture."},
  {"image_id": 4, "id": 13, "caption": "Two zebras grazing in a field"},
  {"image_id": 5, "id": 14, "caption": "Not a picture at all."},
  {"image_id": 1, "id": 15, "caption": "   "},
  {"image_id": 99, "id": 16, "caption": "A caption of no image."},
  {"image_id": 4, "id": 17, "caption": "A zebra."}
]}
JSON
common=(--captions bad.json --images img --vocab "$vocab" --no-progress)

# default: every bad input reported and skipped, the summary counts them
summary="packed 2 of 6 images \(256x256\) and 3 captions .*skipped 4 images \(2 missing or unreadable, 1 failed to decode, 1 without captions\), 5 captions \(3 of dropped images, 1 without image, 1 empty"
expect 0 "$summary" "$pack" "${common[@]}" --out np1.h5
grep -q "img/missing.jpg: listed in bad.json but missing on disk" out.log || fail "no message for the missing image"
grep -Eq "skipping: .*img/trunc.jpg.*truncated JPEG" out.log || fail "no message for the truncated image"
grep -Eq "skipping: .*img/notimg.jpg.*not a JPEG or PNG" out.log || fail "no message for the non-image"
grep -q "annotation id 15 (entry 5): empty caption" out.log || fail "no message for the empty caption"
grep -q "annotation id 16 (entry 6): caption without image" out.log || fail "no message for the caption without image"
h5dump -d image_ids np1.h5 | grep -Eq "\(0\): 1, 4$" || fail "image_ids are not 1, 4"
h5dump -d caption_image np1.h5 | grep -Eq "\(0\): 0, 1, 1$" || fail "caption_image is not 0, 1, 1"
h5dump -d caption_lengths np1.h5 | grep -Eq "\(0\): 8, 8, 5$" || fail "caption_lengths are not 8, 8, 5"
h5dump -d file_names np1.h5 | grep -q '"b.jpg"' || fail "file_names lacks b.jpg"
# the same file under 2 ranks, one image per rank per round (the truncated one fails in a round)
expect 0 "$summary" "$mpiexec" -n 2 --oversubscribe "$pack" "${common[@]}" --batch 1 --out np2.h5
cmp -s np1.h5 np2.h5 || fail "1 and 2 ranks give different files with bad inputs"
[ "$(grep -c 'skipping: .*trunc.jpg' out.log)" -eq 1 ] || fail "expected one message for trunc.jpg under 2 ranks"

# --strict: each bad input is fatal, no output file, an existing one is left untouched
cp np1.h5 keep.h5
sed '/"id": 15,/d; /"id": 16,/d; s/"trunc.jpg"/"a.jpg"/; s/"notimg.jpg"/"a.jpg"/' bad.json > missing_only.json
expect 1 "error: img/missing.jpg: listed in missing_only.json but missing on disk \(--strict\)" "$mpiexec" -n 2 --oversubscribe \
  "$pack" --captions missing_only.json --images img --vocab "$vocab" --strict --out keep.h5
cmp -s np1.h5 keep.h5 || fail "keep.h5 was modified by a failed run"
no_outputs s.h5
sed 's/"missing.jpg"/"a.jpg"/; s/"notimg.jpg"/"b.jpg"/; /"id": 15,/d; /"id": 16,/d' bad.json > trunc_only.json
expect 1 "error: .*img/trunc.jpg.*truncated JPEG" "$mpiexec" -n 2 --oversubscribe "$pack" --captions trunc_only.json \
  --images img --vocab "$vocab" --no-progress --batch 1 --strict --out s.h5
[ "$(grep -c 'sn-pack: error' out.log)" -eq 1 ] || fail "expected one error line under mpirun, got $(grep -c 'sn-pack: error' out.log)"
no_outputs s.h5
sed '/"id": 16,/d' bad.json | sed 's/"missing.jpg"/"a.jpg"/; s/"trunc.jpg"/"a.jpg"/; s/"notimg.jpg"/"a.jpg"/' > empty_only.json
expect 1 "annotation id 15 \(entry 5\): empty caption" "$pack" --captions empty_only.json --images img --vocab "$vocab" --strict --out s.h5
no_outputs s.h5
expect 0 "packed 5 of 6 images .*1 empty" "$pack" --captions empty_only.json --images img --vocab "$vocab" --out ok.h5
sed '/"id": 15,/d' bad.json | sed 's/"missing.jpg"/"a.jpg"/; s/"trunc.jpg"/"a.jpg"/; s/"notimg.jpg"/"a.jpg"/' > noimg_only.json
expect 1 "annotation id 16 \(entry 5\): caption without image" "$mpiexec" -n 2 --oversubscribe "$pack" --captions noimg_only.json \
  --images img --vocab "$vocab" --strict --out s.h5
no_outputs s.h5
# malformed JSON is always an error
expect 1 "bad_malformed.json: malformed JSON at line 4, column 28" "$pack" --captions "$fx/coco_text/bad_malformed.json" \
  --images img --vocab "$vocab" --out s.h5
no_outputs s.h5
# nothing loadable
echo '{"images": [{"id": 1, "file_name": "missing.jpg"}], "annotations": [{"image_id": 1, "id": 1, "caption": "x"}]}' > none.json
expect 1 "none of the 1 images with captions loads" "$pack" --captions none.json --images img --vocab "$vocab" --out s.h5
no_outputs s.h5

# a long caption is truncated to --max-len, keeping <end>
expect 0 "and 3 captions \(max_len 4, 3 truncated\)" "$pack" "${common[@]}" --max-len 4 --size 32 --out short.h5
h5dump -d captions short.h5 | grep -Eq "\(1,0\): 1, [0-9]+, [0-9]+, 2,$" || fail "a truncated row does not end with <end>"
h5dump -d images short.h5 | grep -q "( 2, 3, 32, 32 )" || fail "--size 32 not applied"

# usage
expect 0 "/caption_image" "$pack" --help
expect 2 "--captions, --images, --vocab and --out are required" "$pack" --captions bad.json
expect 2 "--size '0': expected an integer in 1..16384" "$pack" "${common[@]}" --out x.h5 --size 0
expect 2 "unknown or incomplete option '--bogus'" "$pack" "${common[@]}" --out x.h5 --bogus
expect 1 "nope.txt: cannot open" "$pack" --captions bad.json --images img --vocab nope.txt --out x.h5
no_outputs x.h5

# progress: rank 0 reports images done / total, images/s and ETA
expect 0 "sn-pack: 1/5 images \(20%\), [0-9.]+ images/s, ETA [0-9]+ s" "$pack" --captions empty_only.json --images img \
  --vocab "$vocab" --batch 1 --progress 0 --size 64 --out p.h5

echo "coco_pack_cli: $fails failure(s)"
[ "$fails" -eq 0 ]
