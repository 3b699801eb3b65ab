#!/usr/bin/env bash
# Speed figures (yolo2 bench) for the full yolov2-voc network at 416 and for the demo config.
# The loader needs images: it reads a generated VOC-format set of 500-px JPEGs (VOC's size); for
# the 20-class network its shape classes are skipped as unknown (decoding and augmentation, the
# loader's work, are the same). Writes bench/*.json (bench/*-pypi.json with --torch pypi). About 5
# minutes on 2 cores. `--torch pypi` measures the LibTorch 2.x build (scripts/torch-choice.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/torch-choice.sh
torch_choice "$@"
torch_build --target yolo2
YOLO2=$BUILD_DIR/yolo2
# ONNX Runtime for the bench's comparison, from the test references where setup.sh installed them.
export PYTHONPATH=$PWD/.test-deps${PYTHONPATH:+:$PYTHONPATH}
SUFFIX=$([ "$YOLO2_TORCH" = debian ] && echo "" || echo "-$YOLO2_TORCH")
mkdir -p bench

if [ ! -f data/bench500/classes.txt ]; then
  $YOLO2 synth --out data/bench500 --train 300 --test 0 --size 500 --seed 2 >/dev/null
fi
if [ ! -f data/synth/classes.txt ]; then
  $YOLO2 synth --out data/synth --train 2000 --test 300 --size 128 --min-object 32 --max-objects 3 --clutter 0 --seed 1 >/dev/null
fi

echo "== full yolov2-voc (width 1, 20 classes), 416 px, mini-batch 8"
$YOLO2 bench --config configs/voc_ce.yaml --both-layouts \
  --set 'data.train=[{root: data/bench500, split: trainval}]' --set data.skip_unknown_classes=true \
  --json bench/voc416$SUFFIX.json

echo "== demo config (configs/synth_focal.yaml)"
$YOLO2 bench --config configs/synth_focal.yaml --json bench/demo$SUFFIX.json
