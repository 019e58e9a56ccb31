#!/usr/bin/env bash
# coco_vocab_cli.sh: sn-vocab as a command: usage errors, bad inputs (malformed JSON,
# caption without image, empty caption) skipped with a count by default and fatal with
# --strict, no output file left behind (or replaced) on failure, an error under mpirun
# ending every rank, the HDF5 attributes, several --captions files (union counts, one
# attribute line per file, the same file twice refused). Run by ctest:
#   coco_vocab_cli.sh SN_VOCAB MPIEXEC FIXTURE_DIR WORK_DIR
# Must not touch anything outside WORK_DIR.
set -u
vocab=$1 mpiexec=$2 fx=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect RC PATTERN CMD...: exit status RC and PATTERN (grep -E) in stdout+stderr
expect() {
  local want=$1 pat=$2; shift 2
  "$@" > out.log 2>&1
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "exit $rc, expected $want: $*"
  grep -Eq -- "$pat" out.log || { fail "no /$pat/ in output of: $*"; sed 's/^/    /' out.log; }
}
no_outputs() {
  for f in "$@"; do [ ! -e "$f" ] || fail "$f exists after a failure"; done
  ! ls ./*.tmp.* > /dev/null 2>&1 || fail "temporary files left: $(ls ./*.tmp.*)"
}

expect 0 "variable-length UTF-8" "$vocab" --help
expect 2 "--captions FILE.json is required" "$vocab"
expect 2 "--threshold expects an integer >= 1, got '0'" "$vocab" --captions x.json --threshold 0
expect 2 "unknown or incomplete option '--bogus'" "$vocab" --captions x.json --bogus
expect 1 "nope.json: cannot open" "$vocab" --captions nope.json --out v.txt
no_outputs v.txt

# malformed JSON: always an error, says where
expect 1 "bad_malformed.json: malformed JSON at line 4, column 28" "$vocab" --captions "$fx/bad_malformed.json" --out v.txt --h5 v.h5
no_outputs v.txt v.h5

# caption without image: skipped and counted by default
expect 0 "skipped 2 captions \(2 without image, 0 empty" "$vocab" --captions "$fx/bad_no_image.json" --threshold 1 --out v.txt --h5 v.h5
grep -q "annotation id 12 (entry 1): caption without image (image_id 7 is not in \"images\"); skipped" out.log || fail "no warning for id 12"
grep -q "annotation id 13 (entry 2): caption without image (no integer \"image_id\"); skipped" out.log || fail "no warning for id 13"
[ "$(wc -l < v.txt)" -eq 9 ] || fail "v.txt: expected 4 specials + 5 words, got $(wc -l < v.txt) lines"
[ "$(sed -n 5p v.txt)" = "$(printf 'a\t2')" ] || fail "v.txt: line 5 is '$(sed -n 5p v.txt)', expected 'a<TAB>2'"
sha=$(sha256sum "$fx/bad_no_image.json" | cut -d' ' -f1)
h5dump -a source_sha256 v.h5 | grep -q "$sha" || fail "v.h5: source_sha256 is not $sha"
h5dump -a vocab_threshold v.h5 | grep -q "(0): 1" || fail "v.h5: vocab_threshold is not 1"
h5dump -d vocab v.h5 | grep -q 'H5T_VARIABLE' || fail "v.h5: /vocab is not variable-length strings"
h5dump -d vocab v.h5 | grep -q '"couch"' || fail "v.h5: /vocab lacks couch"
# ... and an error with --strict, leaving the previous outputs untouched
cp v.txt keep.txt
expect 1 "bad_no_image.json: annotation id 12 \(entry 1\): caption without image .*--strict" "$vocab" --captions "$fx/bad_no_image.json" --strict --out v.txt --h5 new.h5
cmp -s v.txt keep.txt || fail "v.txt was modified by a failed run"
no_outputs new.h5

# empty caption
expect 0 "skipped 2 captions \(0 without image, 2 empty" "$vocab" --captions "$fx/bad_empty_caption.json" --out e.txt
grep -q "annotation id 14 (entry 1): empty caption; skipped" out.log || fail "no warning for id 14"
grep -q "annotation id 15 (entry 2): empty caption; skipped" out.log || fail "no warning for id 15"
expect 1 "bad_empty_caption.json: annotation id 14 \(entry 1\): empty caption" "$vocab" --captions "$fx/bad_empty_caption.json" --strict --out e2.txt
no_outputs e2.txt

# several --captions: counts over the union, skipped captions of every file summed, the
# HDF5 attributes one line per file in command-line order
expect 0 "bad_no_image.json \+ .*bad_empty_caption.json: 2 captions, 5 words with count >= 2 .*skipped 4 captions \(2 without image, 2 empty" "$vocab" --captions "$fx/bad_no_image.json" --captions "$fx/bad_empty_caption.json" --threshold 2 --out u.txt --h5 u.h5
[ "$(wc -l < u.txt)" -eq 9 ] || fail "u.txt: expected 4 specials + 5 words, got $(wc -l < u.txt) lines"
[ "$(sed -n 5p u.txt)" = "$(printf 'a\t4')" ] || fail "u.txt: line 5 is '$(sed -n 5p u.txt)', expected 'a<TAB>4' (2 per file)"
sha2=$(sha256sum "$fx/bad_empty_caption.json" | cut -d' ' -f1)
h5dump -a source_sha256 u.h5 > attr.log
grep -q "(0): \"$sha\$" attr.log && grep -q "^ *$sha2\"\$" attr.log && grep -q "STRSIZE 130;" attr.log ||
  { fail "u.h5: source_sha256 is not '$sha<LF>$sha2'"; sed 's/^/    /' attr.log; }
h5dump -a source_file u.h5 > attr.log
grep -q '(0): "bad_no_image.json$' attr.log && grep -q '^ *bad_empty_caption.json"$' attr.log ||
  { fail "u.h5: source_file is not 'bad_no_image.json<LF>bad_empty_caption.json'"; sed 's/^/    /' attr.log; }
# one file alone keeps the single-entry attributes
h5dump -a source_file v.h5 | grep -q '(0): "bad_no_image.json"$' || fail "v.h5: source_file is not bad_no_image.json"
# the same file twice (under another name) would count its captions twice: an error
cp "$fx/bad_no_image.json" same.json
expect 1 "same.json: same contents as --captions .*bad_no_image.json \(sha256 $sha\)" "$vocab" --captions "$fx/bad_no_image.json" --captions same.json --out d.txt
no_outputs d.txt
# a bad second file fails the whole run
expect 1 "bad_malformed.json: malformed JSON" "$mpiexec" -n 2 --oversubscribe "$vocab" --captions "$fx/bad_no_image.json" --captions "$fx/bad_malformed.json" --out d.txt
no_outputs d.txt

# under MPI an error ends every rank with the same status, rank 0 reports it once
expect 1 "bad_empty_caption.json: annotation id 14" "$mpiexec" -n 2 --oversubscribe "$vocab" --captions "$fx/bad_empty_caption.json" --strict --out m.txt
[ "$(grep -c 'sn-vocab: error' out.log)" -eq 1 ] || fail "expected one error line under mpirun, got $(grep -c 'sn-vocab: error' out.log)"
no_outputs m.txt

# an output that cannot be written: an error naming it, no temporary file left
mkdir -p ro_dir/sub.txt
expect 1 "ro_dir/sub.txt: cannot rename" "$vocab" --captions "$fx/bad_no_image.json" --out ro_dir/sub.txt
! ls ro_dir/*.tmp.* > /dev/null 2>&1 || fail "temporary file left in ro_dir"

# progress on long runs: rank 0 only, every 10%; --quiet silences it
awk 'BEGIN { printf "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}],\n\"annotations\": [\n";
             for (i = 0; i < 120000; i++) printf "%s{\"image_id\": 1, \"id\": %d, \"caption\": \"A dog number %d.\"}\n", i ? "," : "", i, i % 1000;
             printf "]}\n" }' > big.json
expect 0 "120000 captions, 1004 words with count >= 4" "$mpiexec" -n 2 --oversubscribe "$vocab" --captions big.json --threads 1 --out big.txt
[ "$(grep -c "tokenized  50% of rank 0's captions" out.log)" -eq 1 ] || fail "expected one 50% progress line from rank 0"
[ "$(grep -c "tokenized .*% of rank 0's captions" out.log)" -ge 9 ] || fail "expected progress every 10%"
expect 0 "120000 captions" "$vocab" --captions big.json --quiet --out big.txt
! grep -q "tokenized\|reading" out.log || fail "--quiet still prints progress"

echo "coco_vocab_cli: $fails failure(s)"
[ "$fails" -eq 0 ]
