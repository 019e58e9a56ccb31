#!/usr/bin/env bash
# Captioning end to end on real COCO images and captions (coco-mini train2017, packed at
# 32x32 with every word in the vocabulary):
#   equivalence  one step with P ranks x B/P equals one step with 1 rank x B (max abs
#                difference <= 1e-5 on every tensor, BatchNorm statistics included: they
#                are synchronised), for P = 2 and 4; 4 steps in one go equal 2 steps, a
#                checkpoint and 2 resumed steps, bit for bit; the sharded mode trains on 2
#                ranks with identical parameters on both; eval gives the same loss, BLEU
#                and captions on 1 and 3 ranks
#   overfit      150 epochs on 16 images: the loss falls below 0.3 and the greedy caption
#                of every image is exactly one of its reference captions; `shardnet
#                caption` on the image's JPEG prints the same sentence as `shardnet eval`
#                on the packed pixels, and writes an HTML gallery
#   errors       bad inputs fail with a message naming the problem, on every rank
#   caption_train.sh MODE SHARDNET SN_VOCAB SN_PACK MPIEXEC DATA_DIR WORK_DIR
set -euo pipefail
mode=$1 sn=$2 vocab=$3 pack=$4 mpiexec=$5 data=$6 work=$7
rm -rf "$work" && mkdir -p "$work" && cd "$work"
coco=$data/coco-mini
"$vocab" --captions "$coco/annotations/captions_train2017.json" --threshold 1 --out vocab.txt --quiet
"$pack" --captions "$coco/annotations/captions_train2017.json" --images "$coco/train2017" --vocab vocab.txt \
  --out train.h5 --size 32 --no-progress 2> pack.log || { cat pack.log; exit 1; }
fail() { echo "FAIL: $*"; exit 1; }
run() { local np=$1 log=$2; shift 2
  "$mpiexec" -np "$np" --oversubscribe "$sn" train --model caption --data train.h5 --progress none \
    --threads 1 --check-every 1 --stall-timeout 300 "$@" > "$log" 2>&1 || { cat "$log"; fail "run with $np ranks: $*"; }
  grep -q "identical on all $np ranks" "$log" || { cat "$log"; fail "no identity check in $log"; }
}

case "$mode" in
equivalence)
  common=(--global-shuffle --batch 8 --crop 24 --embed 32 --hidden 64 --seed 5 --no-bleu)
  run 1 p1.log "${common[@]}" --max-steps 1 --save p1.h5
  for np in 2 4; do
    run "$np" "p$np.log" "${common[@]}" --max-steps 1 --save "p$np.h5"
    h5diff -d 1e-5 p1.h5 "p$np.h5" /params /params \
      || fail "one step with $np ranks x $((8 / np)) differs from 1 rank x 8 by more than 1e-5"
    # Adadelta's first step moves a weight by about sqrt(eps) * sign(g) whatever |g|: the
    # parameters hardly see a wrongly scaled gradient, its running average 0.1 g^2 does
    # (values up to 2e-3, 4e4 of 5e5 above 1e-8; ranks differ by 5e-10 at most)
    h5diff -d 2e-9 p1.h5 "p$np.h5" /optim/square_avg /optim/square_avg \
      || fail "one step with $np ranks x $((8 / np)): Adadelta's square_avg (0.1 g^2) differs from 1 rank x 8"
    echo "ok: one step, $np ranks x $((8 / np)) == 1 rank x 8 within 1e-5 (BatchNorm statistics included)"
  done
  run 1 adam1.log "${common[@]}" --optim adam --max-steps 2 --save adam1.h5
  run 2 adam2.log "${common[@]}" --optim adam --max-steps 1 --checkpoint adam-ck.h5
  run 2 adam2b.log "${common[@]}" --optim adam --max-steps 2 --resume adam-ck.h5 --save adam2.h5
  # Adam's first steps move every weight by about lr * sign(g): a weight whose gradient is
  # rounding noise (the conv biases in front of a BatchNorm, say) moves either way with the
  # summation order. So the ranks are compared on what Adam accumulates, exp_avg (/optim/
  # acc_delta, linear in the gradients) and exp_avg_sq, after a stop and a resume.
  h5diff -d 1e-6 adam1.h5 adam2.h5 /optim/acc_delta /optim/acc_delta \
    || fail "Adam: exp_avg after 2 steps on 2 ranks (stopped and resumed) differs from 1 rank"
  h5diff -d 1e-6 adam1.h5 adam2.h5 /optim/square_avg /optim/square_avg \
    || fail "Adam: exp_avg_sq after 2 steps on 2 ranks (stopped and resumed) differs from 1 rank"
  if "$sn" train --model caption --data train.h5 "${common[@]}" --max-steps 3 --resume adam-ck.h5 > mix.log 2>&1; then
    fail "an Adam checkpoint resumed with Adadelta"
  fi
  grep -q "optimizer state is adam's" mix.log || { cat mix.log; fail "no message about the optimizer"; }
  echo "ok: --optim adam: 2 ranks with a resume accumulate the moments of 1 rank (1e-6); Adadelta refuses its checkpoint"
  run 2 once.log "${common[@]}" --max-steps 4 --save once.h5
  run 2 first.log "${common[@]}" --max-steps 2 --checkpoint ck.h5
  run 2 second.log "${common[@]}" --max-steps 4 --resume ck.h5 --save resumed.h5
  h5diff once.h5 resumed.h5 /params /params || fail "2 steps + resume 2 differ from 4 steps in one go"
  h5diff once.h5 resumed.h5 /optim /optim || fail "optimizer state differs after the resume"
  echo "ok: 4 steps == 2 steps + checkpoint + 2 resumed steps, bit for bit (2 ranks)"
  run 2 sharded.log --batch 8 --crop 24 --embed 32 --hidden 64 --epochs 1 --max-steps 6 --no-bleu
  echo "ok: sharded mode, 2 ranks identical"
  # shardnet eval (body features once per image): the same loss, BLEU and captions on 1 and 3
  # ranks (uneven image shards)
  "$sn" eval --model caption --checkpoint once.h5 --data train.h5 --threads 1 --out e1.tsv > e1.log 2>&1 \
    || { cat e1.log; fail "eval on 1 rank"; }
  "$mpiexec" -np 3 --oversubscribe "$sn" eval --model caption --checkpoint once.h5 --data train.h5 --threads 1 \
    --out e3.tsv > e3.log 2>&1 || { cat e3.log; fail "eval on 3 ranks"; }
  grep -qE "^loss [0-9.]+, perplexity" e1.log || { cat e1.log; fail "no loss line from eval"; }
  diff <(grep -E "^(loss|BLEU)" e1.log) <(grep -E "^(loss|BLEU)" e3.log) || fail "eval on 3 ranks differs from 1 rank"
  cmp -s e1.tsv e3.tsv || fail "eval captions on 3 ranks differ from 1 rank"
  echo "ok: eval on 3 ranks == 1 rank (loss, BLEU, every caption)"
  # the benchmarks' figure: 6 steps, 3 of them after the warm-up; a 2-step run has none
  grep -qE "after the first 3 steps: [0-9]+\.[0-9] images/s" sharded.log || { cat sharded.log; fail "no steady-state rate"; }
  ! grep -q "after the first" first.log || fail "a steady-state rate without steps after the warm-up"
  # more threads than CPUs to run on (what mpirun's default binding does to a rank): a warning
  taskset -c 0 "$sn" train --model caption --data train.h5 --progress none --threads 2 --batch 8 --crop 24 \
    --embed 32 --hidden 64 --no-bleu --max-steps 1 > bound.log 2>&1 || { cat bound.log; fail "run bound to one CPU"; }
  grep -q "warning: 2 threads per rank, but rank 0 may only run on 1 CPU" bound.log || { cat bound.log; fail "no binding warning"; }
  ! grep -q "threads per rank, but" sharded.log || fail "a binding warning with 1 thread per rank"
  echo "ok: warning when a rank has more threads than CPUs"
  frozen=(--freeze-encoder --batch 8 --crop 24 --embed 32 --hidden 64 --seed 5 --no-bleu)
  run 2 frozen1.log "${frozen[@]}" --max-steps 1 --save frozen1.h5
  run 2 frozen3.log "${frozen[@]}" --epochs 2 --max-steps 60 --save frozen3.h5 --metrics frozen.jsonl
  for t in encoder.body.body.0.weight encoder.body.body.1.running_mean encoder.body.body.10.running_var; do
    h5diff frozen1.h5 frozen3.h5 "/params/$t" "/params/$t" || fail "frozen encoder: $t changed in training"
  done
  hrc=0
  h5diff -q frozen1.h5 frozen3.h5 /params/encoder.linear.weight /params/encoder.linear.weight || hrc=$?
  [ "$hrc" = 1 ] || fail "frozen encoder: the head did not train (h5diff status $hrc, 1 means 'differs')"
  grep -q "parameters and BatchNorm statistics identical on all 2 ranks" frozen3.log || fail "frozen: ranks differ"
  echo "ok: --freeze-encoder trains the head and decoder only, body and its statistics unchanged"
  # ResNet-18 encoder: 1 rank x 8 == 2 ranks x 4 (its 20 BatchNorm layers synchronised, down
  # to 1x1 maps), and torchvision weights through the converter, frozen
  res=(--global-shuffle --encoder resnet18 --batch 8 --crop 32 --embed 32 --hidden 64 --seed 5 --no-bleu --max-steps 1)
  run 1 r1.log "${res[@]}" --save r1.h5
  run 2 r2.log "${res[@]}" --save r2.h5
  h5diff -d 1e-5 r1.h5 r2.h5 /params /params || fail "ResNet-18: 2 ranks x 4 differ from 1 rank x 8"
  echo "ok: ResNet-18 encoder, one step, 2 ranks x 4 == 1 rank x 8 within 1e-5"
  /usr/bin/python3 "$(dirname "$0")/../data-prep/convert_torchvision.py" --arch resnet18 --random-seed 3 \
    --out tv18.h5 > convert.log || { cat convert.log; fail "convert_torchvision.py"; }
  run 2 tv.log --encoder resnet18 --encoder-weights tv18.h5 --freeze-encoder --batch 8 --crop 32 --embed 32 \
    --hidden 64 --no-bleu --max-steps 3 --save tv.h5
  grep -q "encoder body from tv18.h5 (100 tensors)" tv.log || { cat tv.log; fail "the weights were not loaded"; }
  for t in encoder.body.0.weight encoder.body.7.1.conv2.weight encoder.body.7.1.bn2.running_var; do
    h5diff tv18.h5 tv.h5 "/params/$t" "/params/$t" || fail "torchvision weights: $t differs after frozen training"
  done
  echo "ok: torchvision ResNet-18 weights loaded through the converter and kept frozen"
  ;;
overfit)
  run 1 train.log --train-limit 16 --crop 32 --no-flip --embed 128 --hidden 256 --epochs 150 --batch 16 \
    --save model.h5 --metrics metrics.jsonl
  loss=$(tail -1 metrics.jsonl | sed -n 's/.*"train_loss": \([0-9.]*\).*/\1/p')
  [ -n "$loss" ] || { cat metrics.jsonl; fail "no train_loss in metrics.jsonl"; }
  awk -v l="$loss" 'BEGIN { exit !(l < 0.3) }' || fail "train loss $loss after 150 epochs is not below 0.3"
  "$sn" eval --model caption --checkpoint model.h5 --data train.h5 --limit 16 --out captions.tsv > eval.log \
    || { cat eval.log; fail "eval"; }
  matched=$(awk -F'\t' '{ for (i = 3; i <= NF; i++) if ($i == $2) { n++; break } } END { print n + 0 }' captions.tsv)
  [ "$(wc -l < captions.tsv)" = 16 ] && [ "$matched" = 16 ] \
    || { cat captions.tsv; fail "$matched of 16 greedy captions equal one of their references"; }
  echo "ok: loss $loss; 16 of 16 greedy captions reproduce a reference exactly"
  first=$(h5dump -d /file_names -y -w 0 train.h5 | grep -o '"[^"]*\.jpg"' | head -1 | tr -d '"')
  "$sn" caption --checkpoint model.h5 --html gallery.html "$coco/train2017/$first" > caption.txt \
    || fail "shardnet caption"
  got=$(cut -f2 caption.txt) want=$(head -1 captions.tsv | cut -f2)
  [ "$got" = "$want" ] || fail "caption of $first: '$got', eval on the packed pixels: '$want'"
  [ -s gallery.html ] && grep -q "data:image/jpeg;base64," gallery.html && grep -qF "$want" gallery.html \
    || fail "gallery.html lacks the image or its caption"
  echo "ok: shardnet caption $first: '$got' (as eval), gallery written"
  ;;
errors)
  expect() { local what=$1 pattern=$2; shift 2
    if "$@" > err.log 2>&1; then cat err.log; fail "$what: succeeded"; fi
    grep -q -- "$pattern" err.log || { cat err.log; fail "$what: no message matching '$pattern'"; }
    echo "ok: $what"
  }
  "$vocab" --captions "$coco/annotations/captions_val2017.json" --threshold 1 --out vocab-val.txt --quiet
  "$pack" --captions "$coco/annotations/captions_val2017.json" --images "$coco/val2017" --vocab vocab-val.txt \
    --out other-vocab.h5 --size 32 --no-progress 2> /dev/null
  expect "no --data" "--data FILE is required" "$sn" train --model caption
  expect "missing file" "nope.h5: cannot open" "$mpiexec" -np 2 "$sn" train --model caption --data nope.h5 --threads 1
  expect "other vocabulary" "same vocabulary" "$mpiexec" -np 2 "$sn" train --model caption --data train.h5 \
    --val other-vocab.h5 --threads 1
  expect "crop larger than the images" "larger than the images" "$sn" train --model caption --data train.h5 --crop 64
  expect "unknown encoder" "unknown encoder" "$sn" train --model caption --data train.h5 --crop 32 --encoder vgg
  printf 'not an image' > bad.jpg
  run 1 tiny.log --crop 32 --embed 16 --hidden 16 --max-steps 1 --no-bleu --save tiny.h5
  expect "caption of a non-image" "bad.jpg" "$sn" caption --checkpoint tiny.h5 bad.jpg
  expect "caption without checkpoint" "needs --checkpoint" "$sn" caption bad.jpg
  expect "eval of a non-caption file" "not a file of sn-pack" "$sn" eval --model caption --checkpoint tiny.h5 \
    --data tiny.h5
  ;;
*) fail "unknown mode $mode" ;;
esac
