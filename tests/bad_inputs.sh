#!/usr/bin/env bash
# Bad input, systematically: `shardnet train` and `shardnet eval` on a corpus of broken
# data files and checkpoints (made by gen_bad_h5, plus a few files made here). Each run
# must exit 1 or 2 (not a signal, not a hang), print exactly one error line that names the
# file and the problem (on 2 ranks: the failing rank's line, among Open MPI's abort
# banner), print nothing on stdout, and leave the output files alone: --checkpoint,
# --metrics and --loss-log not created, an existing --save target unchanged, no temporary
# files. A control per group must succeed, so that the refusals are not an artefact.
#   bad_inputs.sh SHARDNET GEN_BAD_H5 MPIEXEC REAL_MNIST_H5 WORK_DIR [GROUP...]
# Groups: layout values files resume state checkpoint np2 (all when none is given).
set -u
sn=$1 gen=$2 mpiexec=$3 real=$4 work=$5
shift 5
groups=" ${*:-layout values files resume state checkpoint np2} "
rm -rf "$work" && mkdir -p "$work/c" "$work/out"
c=$work/c out=$work/out
"$gen" "$c" || { echo "FAIL: gen_bad_h5 could not write the corpus"; exit 1; }
: > "$c/empty.h5"
printf 'this is not an HDF5 file\n' > "$c/text.h5"
mkdir -p "$c/dir.h5"
head -c 1000000 "$real" > "$c/mnist-truncated.h5"    # the real file's first MB
idx=$(dirname "$real")/mnist-idx/t10k-labels-idx1-ubyte
if [ -f "$idx" ]; then cp "$idx" "$c/idx-labels.h5"; else cp "$c/text.h5" "$c/idx-labels.h5"; fi
cp "$c/data-good.h5" "$c/unreadable.h5" && chmod 000 "$c/unreadable.h5"

cases=0 fails=0 controls=0
previous="previous run's parameters"
reset_out() { rm -rf "$out" && mkdir -p "$out" && printf '%s\n' "$previous" > "$out/save.h5"; }
# the output options of every train run
outs=(--save "$out/save.h5" --checkpoint "$out/ckpt.h5" --metrics "$out/metrics.jsonl" --loss-log "$out/loss.txt")
train_opts=(--epochs 1 --threads 1 --progress none --stall-timeout 20)

fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

# expect GROUP NP NAME FILE WANT -- shardnet args...: refused cleanly, the message names
# FILE (the path given) and contains WANT
expect() {
  local group=$1 np=$2 name=$3 file=$4 want=$5
  shift 6
  [[ $groups == *" $group "* ]] || return 0
  cases=$((cases + 1))
  reset_out
  local launch=()
  [ "$np" -gt 1 ] && launch=("$mpiexec" -np "$np" --oversubscribe)
  timeout -k 5 60 "${launch[@]}" "$sn" "$@" > "$work/stdout" 2> "$work/stderr"
  local rc=$? err line
  err=$(cat "$work/stderr")
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then fail "$name" "no exit within 60 s (hang)"; return; fi
  if [ $rc -ge 128 ]; then fail "$name" "killed by signal $((rc - 128)): $err"; return; fi
  if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then fail "$name" "exit status $rc, expected 1 or 2: $err"; return; fi
  if grep -q "Sanitizer" <<<"$err"; then fail "$name" "sanitizer report: $err"; return; fi
  if [ "$np" -eq 1 ]; then
    if [ "$(wc -l < "$work/stderr")" -ne 1 ]; then fail "$name" "not exactly one line on stderr: $err"; return; fi
    line=$err
  else
    line=$(grep -F -- "$want" "$work/stderr" | grep "^shardnet\[rank [0-9]* of $np\]: error: " | head -1)
    if [ -z "$line" ]; then fail "$name" "no rank printed an error with '$want': $err"; return; fi
  fi
  if ! grep -qF -- "$file" <<<"$line"; then fail "$name" "the message does not name $file: $line"; return; fi
  if ! grep -qF -- "$want" <<<"$line"; then fail "$name" "the message lacks '$want': $line"; return; fi
  if [ -s "$work/stdout" ]; then fail "$name" "printed on stdout: $(head -c 300 "$work/stdout")"; return; fi
  local left
  left=$(cd "$out" && ls -A | grep -vx save.h5)
  if [ -n "$left" ]; then fail "$name" "output written: $left"; return; fi
  if [ "$(cat "$out/save.h5")" != "$previous" ]; then fail "$name" "the --save target was changed"; return; fi
  echo "ok   $name (exit $rc): $line"
}

# control GROUP NAME -- shardnet args...: must succeed
control() {
  local group=$1 name=$2
  shift 3
  [[ $groups == *" $group "* ]] || return 0
  controls=$((controls + 1))
  reset_out
  if ! timeout -k 5 60 "$sn" "$@" > "$work/stdout" 2> "$work/stderr"; then
    fail "control $name" "the good input was refused: $(cat "$work/stderr")"
  else
    echo "ok   control $name: accepted"
  fi
}

T=(train "${train_opts[@]}" "${outs[@]}")
E=(eval --threads 1)

# ---- data files: layout (missing datasets, wrong types, wrong shapes) -------------------
control layout good-data -- "${T[@]}" --data "$c/data-good.h5" --max-steps 2
for x in "no-train-images|no dataset /train/images" "no-test-labels|no dataset /test/labels" \
         "no-train-group|no dataset /train/images" "images-group|/train/images is not a dataset" \
         "images-float32|/train/images is not of type uint8" "images-int16|/train/images is not of type uint8" \
         "labels-int8|/train/labels is not of type uint8" "test-images-float64|/test/images is not of type uint8" \
         "images-2d|found 2 and 1 dimensions" "labels-2d|found 3 and 2 dimensions" \
         "images-5d|/train/images has 5 dimensions" "images-scalar|/train/images has 0 dimensions"; do
  f=$c/data-${x%%|*}.h5
  expect layout 1 "data-${x%%|*}" "$f" "${x#*|}" -- "${T[@]}" --data "$f"
done

# ---- data files: values (shapes the model cannot take, row counts, labels, attributes) --
control values good-data-eval -- "${E[@]}" --data "$c/data-good.h5" --checkpoint "$c/ckpt-good.h5"
for x in "images-32x32|/train/images are 1x32x32 (CxHxW), the model needs 1x28x28" \
         "test-images-3ch|/test/images are 3x28x28 (CxHxW)" \
         "rows-mismatch|/train/images has 96 rows but /train/labels has 95" \
         "zero-rows|/train/images has zero rows" "test-zero-rows|/test/images has zero rows" \
         "few-rows|10 training rows are fewer than one global batch of 32" \
         "label-10|/train/labels row 60 is 10, expected 0..9" "label-255|/train/labels row 5 is 255" \
         "test-label-10|/test/labels row 40 is 10, expected 0..9" "std-zero|std 0: expected finite" \
         "mean-nan|mean nan" "corrupt-chunk|cannot read rows 0..95 of /train/images"; do
  f=$c/data-${x%%|*}.h5
  expect values 1 "data-${x%%|*}" "$f" "${x#*|}" -- "${T[@]}" --data "$f"
done

# ---- files that are not MNIST HDF5 at all; eval on broken data -------------------------
for x in "data-truncated|cannot open as HDF5 (truncated or corrupt?)" \
         "mnist-truncated|cannot open as HDF5 (truncated or corrupt?)" \
         "empty|not an HDF5 file (empty)" "text|not an HDF5 file" "idx-labels|not an HDF5 file" \
         "dir|is a directory" "missing|cannot open: No such file"; do
  f=$c/${x%%|*}.h5
  expect files 1 "${x%%|*}" "$f" "${x#*|}" -- "${T[@]}" --data "$f"
done
if [ "$(id -u)" -ne 0 ]; then
  expect files 1 unreadable "$c/unreadable.h5" "Permission denied" -- "${T[@]}" --data "$c/unreadable.h5"
elif [[ $groups == *" files "* ]]; then
  echo "skip unreadable: root reads any file"
fi
for x in "no-test-labels|no dataset /test/labels" "test-images-float64|/test/images is not of type uint8" \
         "test-images-3ch|/test/images are 3x28x28" "test-zero-rows|/test/images has zero rows" \
         "test-label-10|/test/labels row 40 is 10" "truncated|truncated or corrupt"; do
  f=$c/data-${x%%|*}.h5
  expect files 1 "eval-data-${x%%|*}" "$f" "${x#*|}" -- "${E[@]}" --data "$f" --checkpoint "$c/ckpt-good.h5"
done
expect files 1 eval-split-train-label-255 "$c/data-label-255.h5" "/train/labels row 5 is 255" -- \
  "${E[@]}" --data "$c/data-label-255.h5" --checkpoint "$c/ckpt-good.h5" --split train
expect files 1 eval-split-missing "$c/data-good.h5" "no dataset /valid/images" -- \
  "${E[@]}" --data "$c/data-good.h5" --checkpoint "$c/ckpt-good.h5" --split valid

# ---- checkpoints given to --resume: broken files, then broken or foreign contents -----
for x in "ckpt-truncated|cannot open as HDF5 (truncated or corrupt?)" \
         "ckpt-header-only|cannot open as HDF5 (truncated or corrupt?)" \
         "ckpt-version|not a shardnet checkpoint of format 1" \
         "ckpt-version-array|attribute format_version is not a single number" \
         "ckpt-magic-array|attribute magic is not a single string" \
         "ckpt-metrics-array|attribute metrics is not a single string" \
         "data-good|no /params group" "empty|not an HDF5 file (empty)" "dir|is a directory" \
         "missing|cannot open: No such file"; do
  f=$c/${x%%|*}.h5
  expect resume 1 "resume-${x%%|*}" "$f" "${x#*|}" -- "${T[@]}" --data "$c/data-good.h5" --resume "$f"
done
control state resume-good -- "${T[@]}" --data "$c/data-good.h5" --resume "$c/ckpt-good.h5" --max-steps 1
for x in "ckpt-other-model|/params/conv1.weight has shape [3,5], the model needs [16,1,3,3]" \
         "ckpt-no-optim|no /optim group" "ckpt-model-name|a checkpoint of model 'lstm_lm'" \
         "ckpt-epoch-step|corrupt run position" "ckpt-past-epoch|at step 50 of an epoch, but an epoch of" \
         "ckpt-param-int|/params/conv1.weight is not a floating-point dataset" \
         "ckpt-missing-param|no dataset /params/fc2.bias" \
         "ckpt-optim-size|/optim/square_avg has 300431 values, expected 300432" \
         "ckpt-no-steps|/optim has no steps attribute" "ckpt-nan|/params/fc1.weight holds a non-finite value"; do
  f=$c/${x%%|*}.h5
  expect state 1 "resume-${x%%|*}" "$f" "${x#*|}" -- "${T[@]}" --data "$c/data-good.h5" --resume "$f"
done
expect state 1 resume-other-seed "$c/ckpt-good.h5" "made with --seed 0, this run has 5" -- \
  "${T[@]}" --data "$c/data-good.h5" --resume "$c/ckpt-good.h5" --seed 5

# ---- checkpoints given to --init and to eval --checkpoint -----------------------------
control checkpoint init-params-only -- "${T[@]}" --data "$c/data-good.h5" --init "$c/ckpt-no-optim.h5" --max-steps 1
for x in "ckpt-truncated|truncated or corrupt" "ckpt-other-model|/params/conv1.weight has shape [3,5]" \
         "ckpt-version|not a shardnet checkpoint of format 1" "ckpt-param-int|is not a floating-point dataset" \
         "ckpt-missing-param|no dataset /params/fc2.bias" "ckpt-nan|holds a non-finite value" \
         "data-good|no /params group" "text|not an HDF5 file"; do
  f=$c/${x%%|*}.h5
  expect checkpoint 1 "init-${x%%|*}" "$f" "${x#*|}" -- "${T[@]}" --data "$c/data-good.h5" --init "$f"
done
for x in "ckpt-truncated|truncated or corrupt" "ckpt-other-model|/params/conv1.weight has shape [3,5]" \
         "ckpt-version|not a shardnet checkpoint of format 1" "ckpt-magic-array|attribute magic is not a single string" \
         "ckpt-nan|holds a non-finite value" "data-good|no /params group" "empty|not an HDF5 file (empty)" \
         "dir|is a directory"; do
  f=$c/${x%%|*}.h5
  expect checkpoint 1 "eval-${x%%|*}" "$f" "${x#*|}" -- "${E[@]}" --data "$c/data-good.h5" --checkpoint "$f"
done

# ---- two ranks: every rank ends, the failing rank's message names the file ------------
expect np2 2 np2-no-train-images "$c/data-no-train-images.h5" "no dataset /train/images" -- \
  "${T[@]}" --data "$c/data-no-train-images.h5"
expect np2 2 np2-label-10-rank1 "$c/data-label-10.h5" "/train/labels row 60 is 10" -- \
  "${T[@]}" --data "$c/data-label-10.h5"
expect np2 2 np2-test-label-10-rank1 "$c/data-test-label-10.h5" "/test/labels row 40 is 10" -- \
  "${T[@]}" --data "$c/data-test-label-10.h5"
expect np2 2 np2-resume-truncated "$c/ckpt-truncated.h5" "truncated or corrupt" -- \
  "${T[@]}" --data "$c/data-good.h5" --resume "$c/ckpt-truncated.h5"
expect np2 2 np2-init-other-model "$c/ckpt-other-model.h5" "/params/conv1.weight has shape [3,5]" -- \
  "${T[@]}" --data "$c/data-good.h5" --init "$c/ckpt-other-model.h5"
expect np2 2 np2-eval-test-label-10 "$c/data-test-label-10.h5" "/test/labels row 40 is 10" -- \
  "${E[@]}" --data "$c/data-test-label-10.h5" --checkpoint "$c/ckpt-good.h5"
expect np2 2 np2-dir "$c/dir.h5" "is a directory" -- "${T[@]}" --data "$c/dir.h5"

chmod 600 "$c/unreadable.h5" 2>/dev/null
if [ $cases -eq 0 ]; then echo "FAIL: no case in the group(s)$groups"; exit 1; fi
if [ $fails -ne 0 ]; then echo "$fails of $cases bad inputs not refused cleanly"; exit 1; fi
echo "$cases bad inputs, all refused cleanly ($controls good controls accepted)"
