#!/usr/bin/env bash
# The GPU measurements the open issues need, for the lent GPU machine (the `device` tool:
# one H100, 16 cores, no network, no openslide). Each step fits one 10-minute call.
#
# Here, once (the machine cannot download): fetch the packages it lacks as Python 3.12 wheels,
#   mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
#   P="--no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl
#      --platform manylinux_2_28_x86_64 --platform manylinux1_x86_64"
#   pip download $P openslide-python==1.4.7 openslide-bin==4.0.1.2 imagecodecs==2026.3.6
# (29 MB). Then one call per step, carrying them:
#   run(command="bash benchmarks/gpu_session.sh features", carry=[".whl"], timeout_s=600)
#   ... features-eager, wsi, train
# Results land in $OUT/<step>.md; copy the tables into benchmarks/RESULTS.md with the machine.
set -euo pipefail
step=${1:?usage: gpu_session.sh features|features-eager|wsi|train}
out=${OUT:-/tmp/gpu_session}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/$step.md"
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)" \
    | tee -a "$out/$step.md"
case $step in
  features)  # issue 4: ViT-L e2e >= 80% of model-only; ResNet50-trunc >= 8,000 patches/s
    python3 benchmarks/feature_throughput.py --tiles 20000 --batch 512 --workers 14 --compile ;;
  features-eager)
    python3 benchmarks/feature_throughput.py --tiles 20000 --batch 512 --workers 14 ;;
  wsi)  # issue 3's caveat: tile reading beyond 2 cores
    python3 benchmarks/wsi_speed.py --workers 1 2 4 8 14 16 ;;
  train)  # issue 6, evidence 3: GPU half of training time and peak memory
    python3 benchmarks/training_scale.py --device cuda --epochs 3 --models wsi_abmil mope_teacher mope ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac 2>&1 | tee -a "$out/$step.md"
