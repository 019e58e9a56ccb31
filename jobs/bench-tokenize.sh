#!/usr/bin/env bash
# Caption tokenizer throughput, C (sn-tokenize-bench, one thread) against NLTK
# (tests/bench_nltk_tokenize.py under Debian's /usr/bin/python3 with python3-nltk), in the
# same sitting on the same captions.
#   jobs/bench-tokenize.sh [BUILD_DIR] [FILE.json]
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,5p' "$0"; exit 0 ;; esac
build=${1:-build}
json=${2:-../shared/data/coco-mini/annotations/captions_val2017_full.json}
cmake --build "$build" --target sn_tokenize_bench > /dev/null
"$build/data-prep/sn-tokenize-bench" "$json" 5
/usr/bin/python3 tests/bench_nltk_tokenize.py "$json" 3
