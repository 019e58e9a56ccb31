#!/usr/bin/env bash
# Fuzzes the file readers with libFuzzer + AddressSanitizer for a bounded time (not part
# of ctest): the IDX parser of sn-mnist-prep (tests/fuzz/fuzz_idx.c) and the HDF5
# checkpoint and MNIST-layout readers (tests/fuzz/fuzz_checkpoint.c).
#   jobs/fuzz.sh [SECONDS]     seconds per harness (default 60)
# Builds build-fuzz with clang (-DSHARDNET_FUZZ=ON; bash jobs/install-deps.sh --dev for
# clang). Seeds: a real IDX header with a few rows (data/mnist-idx when fetched, else
# made up) and a small real checkpoint and data file. The corpora grow in
# build-fuzz/corpus/ across runs; a crashing input is saved in build-fuzz/artifacts/ and
# the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
[[ $secs =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2; }
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (bash jobs/install-deps.sh --dev)" >&2; exit 2; }

b=build-fuzz
CC=clang cmake -S . -B $b -DSHARDNET_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build $b -j "${FUZZ_BUILD_JOBS:-2}" --target fuzz_idx fuzz_checkpoint >/dev/null
mkdir -p $b/corpus/idx $b/corpus/checkpoint $b/seeds/idx $b/seeds/checkpoint $b/artifacts

# IDX seeds: one selector byte (1 images, 0 labels), then the file
idx=data/mnist-idx
if [ -f $idx/t10k-images-idx3-ubyte ] && [ -f $idx/t10k-labels-idx1-ubyte ]; then
  { printf '\x01\x00\x00\x08\x03\x00\x00\x00\x03'; head -c $((16 + 3 * 784)) $idx/t10k-images-idx3-ubyte | tail -c +9; } \
    > $b/seeds/idx/images-3
  { printf '\x00\x00\x00\x08\x01\x00\x00\x00\x0a'; head -c 18 $idx/t10k-labels-idx1-ubyte | tail -c +9; } > $b/seeds/idx/labels-10
else
  { printf '\x01\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c $((3 * 784)) /dev/zero; } \
    > $b/seeds/idx/images-3
  printf '\x00\x00\x00\x08\x01\x00\x00\x00\x0a\x07\x02\x01\x00\x04\x01\x04\x09\x05\x09' > $b/seeds/idx/labels-10
fi
printf '\x00\x00\x00\x08\x01\x00\x00\x00\x00' > $b/seeds/idx/labels-empty
FUZZ_WRITE_SEEDS=$b/seeds/checkpoint $b/fuzz_checkpoint

# a huge allocation that a corrupt size in the file asks libhdf5 for fails (NULL), as it does
# without the sanitizer, instead of ending the run
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
tmp=$(mktemp -d /dev/shm/sn-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ours=0

# The first frame of a crash's stack that is neither the sanitizer nor libFuzzer nor libc's
# allocator/string functions: where the fault is.
culprit() {
  grep -E '^ +#[0-9]+ ' "$1" | grep -vE 'libclang_rt|__sanitizer|__asan|__interceptor|fuzzer::|HandleMalloc|MallocHook| in (malloc|calloc|realloc|free)|__(mem|str)[a-z0-9_]* ' |
    head -1 | sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ (in )?//; s/ \(BuildId: [0-9a-f]+\)//' || true
}

echo "== fuzz_idx: $secs s (the IDX parser: every crash is ours)"
log=$b/fuzz_idx.log
set +e
$b/fuzz_idx -max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix=$b/artifacts/idx- \
  $b/corpus/idx $b/seeds/idx > "$log" 2>&1
rc=$?
set -e
grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" | sed 's/^/   /'
echo "   corpus: $(ls $b/corpus/idx | wc -l) inputs"
if [ $rc -ne 0 ]; then
  ours=1
  echo "   FOUND (exit $rc): $(grep -E 'SUMMARY' "$log" | head -1); input in $b/artifacts/, log $log"
fi

# The HDF5 readers: libhdf5 parses the file before our code sees it, and a fault inside
# libhdf5 is not ours to fix. Fork mode keeps fuzzing past every fault; each one found is
# replayed and attributed to libhdf5 or to shardnet by the first frame of its stack.
echo "== fuzz_checkpoint: $secs s (checkpoint and MNIST readers over libhdf5)"
log=$b/fuzz_checkpoint.log
before=$(ls $b/artifacts | grep -c '^checkpoint-' || true)
set +e
TMPDIR=$tmp $b/fuzz_checkpoint -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
  -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=65536 \
  -artifact_prefix=$b/artifacts/checkpoint- $b/corpus/checkpoint $b/seeds/checkpoint > "$log" 2>&1
set -e
last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
echo "   $execs executions: ${last#*: }"
echo "   corpus: $(ls $b/corpus/checkpoint | wc -l) inputs"
new=$(( $(ls $b/artifacts | grep -c '^checkpoint-' || true) - before ))
for a in $(ls -t $b/artifacts | grep '^checkpoint-' | head -n $new); do
  rlog=$tmp/replay.log
  TMPDIR=$tmp timeout 60 $b/fuzz_checkpoint -rss_limit_mb=2048 -malloc_limit_mb=65536 $b/artifacts/$a > "$rlog" 2>&1 || true
  what=$(grep -oE 'ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [a-z-]+' "$rlog" | head -1 || true)
  where=$(culprit "$rlog")
  if [ -z "$where" ]; then echo "?|${what:-does not reproduce alone}|-"
  elif grep -q 'libhdf5' <<<"$where"; then echo "libhdf5|${what#ERROR: }|$where"
  else ours=1; echo "OURS|${what#ERROR: }|$where"; fi
done > "$tmp/findings"
if [ "$new" -gt 0 ]; then
  echo "   $new faulting input(s) in $b/artifacts/, by kind and place (count, who, what, where):"
  sort "$tmp/findings" | uniq -c | sed 's/^/   /'
fi
grep -q '^OURS' "$tmp/findings" && ours=1
[ $ours -eq 0 ] && echo "fuzz.sh: nothing of ours found in $secs s per harness"
exit $ours
