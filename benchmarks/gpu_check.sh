#!/usr/bin/env bash
# The GPU session check: correctness on CUDA first, then throughput against NAC-NOTES §6.
# Run it on a lent GPU machine from the repository root, e.g. through the device tool:
#   bash benchmarks/gpu_check.sh          (writes its tables and logs under $OUT, default /tmp/nacscope-gpu)
# It needs only torch, torchvision, numpy, h5py, rich, typer, scikit-learn and numba (all on the H200 image);
# timm/kornia are used when present. Every step has its own timeout so the whole stays under ~9 minutes.
set -uo pipefail
OUT=${OUT:-/tmp/nacscope-gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log() { echo "== $*" | tee -a "$OUT/summary.md"; }

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python -c "import torch; print('torch', torch.__version__)"; } \
    > "$OUT/machine.txt" 2>&1
log "machine"; cat "$OUT/machine.txt" >> "$OUT/summary.md"

log "correctness on CUDA (nac_loss vs CPU float64, code bits CUDA fp32 vs CPU, augmentation, 1-epoch digits train)"
timeout 150 python benchmarks/gpu_correctness.py 2>&1 | tee "$OUT/correctness.txt" | tail -20 >> "$OUT/summary.md"

log "training throughput, the authors' step (per-view forwards, their LARS): resnet50 bs512 and vgg16_bn bs1000, nacscope fp32 and bf16+channels_last vs the authors' pipeline (16 workers)"
timeout 330 python benchmarks/train_throughput.py --gpu --workers 16 2>&1 | tee "$OUT/train_throughput.txt" \
    | tail -25 >> "$OUT/summary.md"

log "dump throughput vs bare forward, resnet50 on CIFAR-shaped data"
timeout 90 python benchmarks/dump_throughput.py --arch resnet50 --device cuda --n 20000 --batch 1000 --repeats 2 2>&1 \
    | tee "$OUT/dump_throughput.txt" | tail -12 >> "$OUT/summary.md"

log "done"; date -u >> "$OUT/summary.md"
