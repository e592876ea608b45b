#!/usr/bin/env bash
# vLLM for the offline GPU machine (torch 2.11.0 / CUDA 13, Python 3.12, no network), in three steps.
#
#   bash benchmarks/gpu/vllm_wheels.sh prepare     # HERE (PyPI reachable): collect_wheels.py walks
#                                                  # vllm==0.20.0's requirements for cp312/manylinux and
#                                                  # downloads those the GPU image lacks
#                                                  # (gpu_image_packages.txt); tar, split into 60 MB parts
#   carry .gpu/parts/part-aa, then part-ab, ...    # one `device run` per part while the machine is warm
#   bash benchmarks/gpu/vllm_wheels.sh install     # THERE: join, unpack, pip install --no-deps --target
#                                                  # /tmp/vllm-site; then export PYTHONPATH=/tmp/vllm-site
#
# vllm 0.20.0 pins torch==2.11.0 / torchvision 0.26.0 / torchaudio 2.11.0, which the GPU image already has,
# so they are never carried. flashinfer is carried but not required: VLLM_USE_FLASHINFER_SAMPLER=0.
set -euo pipefail
cd "$(dirname "$0")/../.."
VLLM_VERSION=${VLLM_VERSION:-0.20.0}
WORK=.gpu
PARTS=$WORK/parts
SITE=${SITE:-/tmp/vllm-site}
prepare() {
  rm -rf "$WORK/wheels" "$PARTS" && mkdir -p "$WORK/wheels" "$PARTS"
  python3 benchmarks/gpu/collect_wheels.py "vllm==$VLLM_VERSION" --out "$WORK/wheels" ${WITH_OPTIONAL:+--with-optional}
  tar -C "$WORK" -cf "$WORK/wheels.tar" wheels
  split -b 60m "$WORK/wheels.tar" "$PARTS/part-"
  rm "$WORK/wheels.tar"
  ls -1 "$PARTS" | sed 's|^|  carry .gpu/parts/|'
}

install() {
  cat "$PARTS"/part-* | tar -C /tmp -xf -
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" /tmp/wheels/*.whl
  PYTHONPATH=$SITE VLLM_USE_FLASHINFER_SAMPLER=0 python3 -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__, torch.cuda.get_device_name())"
  echo "now: export PYTHONPATH=$SITE VLLM_USE_FLASHINFER_SAMPLER=0"
}

case "${1:-}" in
  prepare) prepare ;;
  install) install ;;
  *) echo "usage: $0 prepare|install" >&2; exit 2 ;;
esac
