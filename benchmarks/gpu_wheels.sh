#!/usr/bin/env bash
# Download the wheels that the GPU machine (nvidia-h200 image: Python 3.12.3, jax 0.11.2 + CUDA 13 plugin,
# numpyro 0.21.0, numpy, pandas, scipy, xarray, h5py, matplotlib, optax, lazy-loader, typing-extensions,
# packaging preinstalled; no network there) lacks for hdsl and its benchmarks, into .whl/ at the repository
# root, ignored through .git/info/exclude (never commit them). Versions are those of the development .venv.
# Then, on the device: run `bash benchmarks/gpu_check.sh` with carry [".whl"] (benchmarks/RESULTS.md, "GPU").
#
#   cd /work/main && bash benchmarks/gpu_wheels.sh            # PYTHON=... to use another pip
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# name==version; all pure Python (py3-none-any). Requires-Dist checked by hand (2026-12): blackjax needs
# jax, jaxlib, numpy, optax, scipy, typing-extensions (all in the image); arviz -> arviz-base, arviz-stats[xarray],
# arviz-plots; arviz-base -> numpy, xarray, typing-extensions, lazy_loader (image); arviz-stats[xarray] ->
# xarray-einstats (-> numpy, scipy, xarray); h5netcdf -> packaging, numpy (+ h5py, image); lark -> nothing.
# jax, jaxlib, numpy and numpyro are NOT carried: the image's (with the CUDA plugin) are used.
WHEELS=(
  blackjax==1.7.1
  arviz==1.3.0
  arviz-base==1.3.1
  arviz-stats==1.3.3
  arviz-plots==1.3.2
  xarray-einstats==0.11.0
  lark==1.3.1
  h5netcdf==1.8.3
)

mkdir -p .git/info
touch .git/info/exclude
grep -qxF '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude

rm -rf .whl
mkdir -p .whl
for w in "${WHEELS[@]}"; do
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$w" 2>&1 | grep -v "^WARNING: Location" || true
done

n=$(ls .whl/*.whl 2>/dev/null | wc -l)
if [ "$n" -ne "${#WHEELS[@]}" ]; then
  echo "expected ${#WHEELS[@]} wheels in .whl/, found $n" >&2
  exit 1
fi
ls -l .whl
echo "total: $(du -cb .whl/*.whl | tail -1 | cut -f1) bytes in $n wheels (carry limit 64 MiB with the tree)"
git check-ignore -q .whl/ && echo ".whl/ is git-ignored (.git/info/exclude)"
