#!/usr/bin/env bash
# All GPU figures of issue "Large fits" in one device call (benchmarks/RESULTS.md, "GPU"):
#
#   here:    bash benchmarks/gpu_wheels.sh                    # the missing packages as wheels in .whl/
#   device:  bash benchmarks/gpu_check.sh                     # run with carry [".whl"], timeout_s 540
#
# Steps, each under its own `timeout` (a slow step cannot eat the others; a failed step does not stop the
# next), inside a total budget of GPU_CHECK_BUDGET seconds (default 470): install the wheels into /tmp/site;
# nvidia-smi, jax.devices() and package versions; correctness of hdsl's log-density and gradient on the GPU
# (float32 and float64) against the CPU in float64; the scale table (scale.py: hdsl at 10k/100k/1M rows, then
# the hand-written program at 10k/100k, float32 for both); 4 against 1,000 chains (gpu_bench.py chains);
# one-gradient timings (scale.py --grad). Everything lands in $OUT: setup.log, correctness.log, scale.log, chains.log,
# summary.md and results.json.
#
# CPU dry run (tiny sizes, JAX on the CPU, wheels installed into a temporary folder):
#   OUT=$(mktemp -d) PY=/tmp/gpuvenv/bin/python bash benchmarks/gpu_check.sh --cpu-smoke
set -u
cd "$(dirname "$0")/.."

SMOKE=0
[ "${1:-}" = "--cpu-smoke" ] && SMOKE=1
[ "${GPU_CHECK_SMOKE:-0}" = "1" ] && SMOKE=1
PY=${PY:-python3}
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)      # JSON files and the step table; merged into $OUT at the end
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
START=$(date +%s)

if [ "$SMOKE" = 1 ]; then
  export JAX_PLATFORMS=cpu
  SITE=${SITE:-$WORK/site}
  BUDGET=${GPU_CHECK_BUDGET:-900}
  # tiny sizes: the whole script in a few minutes on a 2-core CPU
  CORR_ARGS=(--points 6 --scale-sizes 2k)
  SCALE_ARGS=(--sizes 2k,5k --warmup 50,50 --draws 50,50 --timeout 120)
  HAND_ARGS=(--sizes 2k --warmup 50 --draws 50 --timeout 90)
  GRAD_ARGS=(--sizes 2k,5k --repeats 3)
  CHAIN_ARGS=(--chains 4,20 --warmup 50 --draws 50 --scale-size 2k)
  # planned limit of each step, seconds
  T_INSTALL=60 T_CORR=150 T_SCALE=200 T_HAND=100 T_CHAINS=200 T_GRAD=90
else
  SITE=${SITE:-/tmp/site}
  BUDGET=${GPU_CHECK_BUDGET:-470}
  CORR_ARGS=(--points 20 --scale-sizes 10k,1M)
  # per fit: hdsl up to 110 s; the hand-written program 60 s (non-centered: a funnel here, deep trees; the
  # CPU run did not finish 100k in 420 s)
  SCALE_ARGS=(--sizes 10k,100k,1M --warmup 500,500,300 --draws 500,500,300 --timeout 110)
  HAND_ARGS=(--sizes 10k,100k --warmup 500,500 --draws 500,500 --timeout 60)
  GRAD_ARGS=(--sizes 10k,100k,1M --repeats 20)
  CHAIN_ARGS=(--chains 4,1000 --warmup 200 --draws 200)
  # planned limit of each step, seconds (estimates: ~15-25 s of XLA compilation per fit)
  T_INSTALL=60 T_CORR=70 T_SCALE=170 T_HAND=110 T_CHAINS=120 T_GRAD=45
fi
MIN_LATER=20    # each later step keeps at least this much of the budget

STEPS="$WORK/steps.tsv"
: > "$STEPS"

# run_step NAME WANT N_LATER LOG -- command...: runs under timeout min(WANT, what the budget leaves after
# N_LATER later steps' floors); appends NAME, exit status, seconds and the limit to steps.tsv
run_step() {
  local name=$1 want=$2 later=$3 log=$4; shift 5
  local now left limit t0 rc
  now=$(date +%s); left=$(( BUDGET - (now - START) - later * MIN_LATER ))
  limit=$(( want < left ? want : left ))
  if [ "$limit" -lt 10 ]; then
    echo "== $name: skipped, budget spent" | tee -a "$log"
    printf '%s\tskipped\t0\t%s\n' "$name" "$limit" >> "$STEPS"
    return 0
  fi
  echo "== $name (limit ${limit} s, t=$(( now - START )) s): $*" | tee -a "$log"
  t0=$(date +%s)
  # bash -c runs the exported shell functions too; timeout signals the whole process group (scale.py's fits)
  timeout -k 5 "$limit" bash -c '"$@"' _ "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$log"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$limit" >> "$STEPS"
  return 0
}

install_wheels() {
  ls -l .whl/*.whl || return 1
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
}

env_info() {
  nvidia-smi || echo "(no nvidia-smi)"
  "$PY" - "$WORK/env.json" <<'EOF'
import datetime, importlib.metadata as md, json, os, platform, sys
import jax
print("python", sys.version.split()[0], sys.executable)
print("jax.devices():", jax.devices(), "default backend:", jax.default_backend())
names = ["hdsl", "jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "numpyro", "blackjax", "arviz",
         "arviz-base", "arviz-stats", "numpy", "scipy", "pandas", "xarray", "optax", "lark", "h5netcdf"]
vers = {}
for n in names:
    try:
        vers[n] = md.version(n)
    except md.PackageNotFoundError:
        pass
import hdsl, blackjax, arviz, numpyro  # noqa: F401,E401 - what the later steps import
print("versions:", vers)
print("hdsl imported from", hdsl.__file__, "; default dtype", hdsl.default_dtype())
json.dump({"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": f"{platform.platform()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
           "jax": jax.__version__, "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
           "packages": vers}, open(sys.argv[1], "w"), indent=1)
EOF
}

export -f install_wheels env_info
export PY SITE WORK
SETUP_LOG="$OUT/setup.log"
echo "gpu_check.sh: smoke=$SMOKE budget=${BUDGET}s python=$PY site=$SITE out=$OUT $(date -u +%FT%TZ)" | tee "$SETUP_LOG"
# in order of priority: what the issue asks for first, the gradient timings last
run_step install "$T_INSTALL" 0 "$SETUP_LOG" -- install_wheels
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
run_step env 60 0 "$SETUP_LOG" -- env_info

run_step correctness "$T_CORR" 4 "$OUT/correctness.log" -- \
  "$PY" benchmarks/gpu_bench.py correctness "${CORR_ARGS[@]}" --json "$WORK/correctness.json"

run_step scale "$T_SCALE" 3 "$OUT/scale.log" -- \
  "$PY" benchmarks/scale.py --tools hdsl --dtype float32 "${SCALE_ARGS[@]}" --json "$WORK/scale_hdsl.json"

run_step scale-hand "$T_HAND" 2 "$OUT/scale.log" -- \
  "$PY" benchmarks/scale.py --tools handwritten --dtype float32 "${HAND_ARGS[@]}" --json "$WORK/scale_hand.json"

run_step chains "$T_CHAINS" 1 "$OUT/chains.log" -- \
  "$PY" benchmarks/gpu_bench.py chains "${CHAIN_ARGS[@]}" --json "$WORK/chains.json"

run_step grad "$T_GRAD" 0 "$OUT/scale.log" -- \
  "$PY" benchmarks/scale.py --grad --dtype float32 "${GRAD_ARGS[@]}" --json "$WORK/grad.json"

SMOKE_FLAG=()
[ "$SMOKE" = 1 ] && SMOKE_FLAG=(--smoke)
"$PY" benchmarks/gpu_bench.py summary --dir "$WORK" --out "$OUT" "${SMOKE_FLAG[@]}" > /dev/null 2>> "$SETUP_LOG" \
  || echo "summary failed (see setup.log)" | tee -a "$SETUP_LOG"
echo "gpu_check.sh: done in $(( $(date +%s) - START )) s; files in $OUT:" | tee -a "$SETUP_LOG"
ls -l "$OUT" | tee -a "$SETUP_LOG"
cat "$OUT/summary.md" 2>/dev/null
rm -rf "$WORK"
