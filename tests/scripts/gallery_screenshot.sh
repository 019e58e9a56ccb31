#!/usr/bin/env bash
# gallery_screenshot.sh: renders a caption gallery (the --html page of `shardnet caption`
# and `shardnet eval --model caption`, src/cli/gallery.c) with headless Chromium and checks
# that something was drawn. The manual check of the page's look; not run by ctest, and
# Chromium is not among the CI packages (too heavy): install it by hand
# (Debian: apt-get install -y chromium).
#
#   tests/scripts/gallery_screenshot.sh GALLERY.html OUT.png [WIDTHxHEIGHT] [SCALE]
#
# WIDTHxHEIGHT is the browser window in CSS pixels (default 1280x960); SCALE the device
# scale factor (default 0.75: a 960x720 PNG, small enough to commit). The page of the unit
# test is build/tests/gallery/test_gallery.html (ctest -R gallery writes it); the example
# jobs/results/caption-gallery-example.png was made from it with the defaults.
# Exit status: 0 when OUT.png was written and is not of one colour; 1 when Chromium is
# missing, fails, or the PNG is empty or uniform; 2 for bad usage.
# Must not: touch anything but OUT.png (Chromium's profile goes to a temporary folder that
# is removed).
set -u
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "gallery_screenshot.sh: expected GALLERY.html OUT.png [WIDTHxHEIGHT] [SCALE] (try --help)" >&2
  exit 2
fi
page=$1 out=$2 size=${3:-1280x960} scale=${4:-0.75}
if ! [[ $size =~ ^[0-9]+x[0-9]+$ ]]; then
  echo "gallery_screenshot.sh: window size '$size' is not WIDTHxHEIGHT, e.g. 1280x960" >&2
  exit 2
fi
if ! [[ $scale =~ ^[0-9]*\.?[0-9]+$ ]]; then
  echo "gallery_screenshot.sh: scale '$scale' is not a positive number, e.g. 0.75" >&2
  exit 2
fi
[ -f "$page" ] || { echo "gallery_screenshot.sh: $page: no such file (expected a gallery .html)" >&2; exit 1; }
browser=
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" > /dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "gallery_screenshot.sh: no chromium, chromium-browser or google-chrome on PATH (Debian: apt-get install -y chromium)" >&2
  exit 1
fi

abs_page=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
profile=$(mktemp -d) || exit 1
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
# --no-sandbox: containers often run as root, where Chromium's sandbox refuses to start
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --force-device-scale-factor="$scale" --window-size="${size/x/,}" --screenshot="$out" \
  "file://$abs_page" > "$profile/log" 2>&1
rc=$?
if [ $rc -ne 0 ] || [ ! -s "$out" ]; then
  echo "gallery_screenshot.sh: $browser exited $rc and wrote no $out; its output:" >&2
  sed 's/^/    /' "$profile/log" >&2
  exit 1
fi

# Uniform? With Python's PIL (python3 on PATH or Debian's /usr/bin/python3): the extrema
# of every band; without it: a PNG of one colour compresses to a few KB (3.5 KB at
# 960x720), a gallery with photos to hundreds, so a file under 16 KB is taken as blank.
bytes=$(wc -c < "$out")
py=
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import PIL' > /dev/null 2>&1; then py=$p; break; fi
done
if [ -n "$py" ]; then
  if ! "$py" - "$out" <<'EOF'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
ext = im.getextrema()
print(f"{sys.argv[1]}: {im.size[0]}x{im.size[1]}, band extrema {ext}")
sys.exit(0 if any(lo != hi for lo, hi in ext) else 1)
EOF
  then
    echo "gallery_screenshot.sh: $out is of one colour: the page did not render" >&2
    exit 1
  fi
elif [ "$bytes" -lt 16384 ]; then
  echo "gallery_screenshot.sh: $out is only $bytes bytes: probably blank" >&2
  exit 1
fi
echo "gallery_screenshot.sh: wrote $out ($bytes bytes) from $page"
