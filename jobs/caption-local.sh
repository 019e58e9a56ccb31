#!/usr/bin/env bash
# The captioning pipeline on one machine, end to end on real photos: install dependencies,
# build, build the vocabulary of the training captions (sn-vocab), pack train and
# validation images + captions into HDF5 under mpirun (sn-pack), train the encoder-decoder
# data-parallel (shardnet train --model caption), evaluate BLEU-1..4 and perplexity
# (shardnet eval --model caption, with an HTML gallery), and caption a few photos.
# Defaults are the reference recipe: flickr8k-1000 + coco-mini train2017 for training,
# coco-mini val2017 for validation, vocabulary threshold 4, images 256, encoder small,
# crop 112, Adadelta lr 1.0, batch 32, 10 epochs (about 5 minutes on 2 cores, 3.5 of them training).
#
#   jobs/caption-local.sh [--ranks P] [--threads T] [--data DIR] [--epochs N] [--crop N]
#                         [--size S] [--out DIR] [-- TRAIN_ARGS...]
#
#   --ranks P     MPI ranks                             [cores / 2, at least 1]
#   --threads T   OpenMP threads per rank               [cores / ranks]
#   --data DIR    folder with coco-mini/ and flickr8k-1000/  [$SHARDNET_DATA or ../shared/data]
#   --epochs N    training epochs                       [10]
#   --crop N      random crop of the training images    [112]
#   --size S      packed image size                     [256]
#   --out DIR     where the packed data, model, metrics, captions and gallery go
#                                                       [runs/caption-DATE]
#   after --, arguments for `shardnet train --model caption` (build/shardnet train --model caption --help)
# Safe as root (sets Open MPI's root permission for this run only).
set -euo pipefail
cd "$(dirname "$0")/.."
cores=$(nproc)
ranks="" threads="" data=${SHARDNET_DATA:-../shared/data} epochs=10 crop=112 size=256 out="runs/caption-$(date +%Y%m%d-%H%M%S)"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --crop) crop=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "caption-local.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
ranks=${ranks:-$(( cores / 2 > 0 ? cores / 2 : 1 ))}
threads=${threads:-$(( cores / ranks > 0 ? cores / ranks : 1 ))}
flickr=$data/flickr8k-1000 coco=$data/coco-mini
for f in "$flickr/captions.json" "$coco/annotations/captions_train2017.json" "$coco/annotations/captions_val2017.json"; do
  [ -f "$f" ] || { echo "caption-local.sh: $f not found (--data DIR: the folder of coco-mini/ and flickr8k-1000/)" >&2; exit 1; }
done

bash jobs/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$cores" >/dev/null

mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=$threads
bind=(--bind-to core --map-by "slot:PE=$threads")
[ $((ranks * threads)) -le "$cores" ] || bind=(--oversubscribe --bind-to none)
mpi=(mpirun -np "$ranks" "${bind[@]}")

echo "caption-local: vocabulary of the training captions (threshold 4)"
"${mpi[@]}" build/data-prep/sn-vocab --captions "$flickr/captions.json" \
  --captions "$coco/annotations/captions_train2017.json" --threshold 4 --out "$out/vocab.txt"
echo "caption-local: packing images (${size}x${size}) and captions"
"${mpi[@]}" build/data-prep/sn-pack --captions "$flickr/captions.json" --images "$flickr/images" \
  --vocab "$out/vocab.txt" --size "$size" --out "$out/flickr_train.h5"
"${mpi[@]}" build/data-prep/sn-pack --captions "$coco/annotations/captions_train2017.json" --images "$coco/train2017" \
  --vocab "$out/vocab.txt" --size "$size" --out "$out/coco_train.h5"
"${mpi[@]}" build/data-prep/sn-pack --captions "$coco/annotations/captions_val2017.json" --images "$coco/val2017" \
  --vocab "$out/vocab.txt" --size "$size" --out "$out/coco_val.h5"

echo "caption-local: training, mpirun -np $ranks x $threads threads on $cores cores -> $out"
"${mpi[@]}" build/shardnet train --model caption --data "$out/flickr_train.h5" --data "$out/coco_train.h5" \
  --val "$out/coco_val.h5" --encoder small --crop "$crop" --epochs "$epochs" --batch 32 --lr 1.0 \
  --threads "$threads" --metrics "$out/metrics.jsonl" --checkpoint "$out/model.h5" "${extra[@]}" \
  | tee "$out/train.log"

echo "caption-local: evaluation on coco-mini val2017"
"${mpi[@]}" build/shardnet eval --model caption --checkpoint "$out/model.h5" --data "$out/coco_val.h5" \
  --threads "$threads" --samples 10 --out "$out/val_captions.tsv" --html "$out/gallery.html" | tee "$out/eval.log"
echo "caption-local: captions of three photos"
build/shardnet caption --checkpoint "$out/model.h5" --threads "$threads" $(ls "$coco"/val2017/*.jpg | head -3)
echo "caption-local: gallery of the first validation images: $out/gallery.html"
