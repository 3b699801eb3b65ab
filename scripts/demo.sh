#!/usr/bin/env bash
# The main job on generated data, end to end, as darknet trains YOLOv2: set up, build, generate a
# classification set and pretrain the Darknet19 backbone on it (cached in runs/synth_pretrain,
# rebuilt when missing or when its config or data arguments change), generate a VOC-format
# detection set, train configs/synth_focal_pretrained.yaml from the pretrained backbone on the CPU,
# evaluate the best checkpoint (VOC07 mAP, at 160 px) and show where the plots are. About 11-14 minutes on 2
# cores without the build. SEED=N changes the seed of both trainings (runtime.seed); YOLO2=PATH runs
# that binary and skips the build.
# `--torch pypi` builds against PyPI's LibTorch 2.x instead (scripts/torch-choice.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/torch-choice.sh
torch_choice "$@"

# YOLO2=PATH: run that binary instead of building (e.g. a copy kept while the sources change).
if [ -z "${YOLO2:-}" ]; then
  torch_build --target yolo2
  YOLO2=$BUILD_DIR/yolo2
fi
start=$(date +%s)
CONFIG=${CONFIG:-configs/synth_focal_pretrained.yaml}
source scripts/backbone-cache.sh
RUN=runs/$(basename "$CONFIG" .yaml)
SEED_ARGS=()
[ -n "${SEED:-}" ] && SEED_ARGS=(--set "runtime.seed=$SEED")

echo "== pretrain the backbone ($PRETRAIN_RUN/backbone.conv.23)"
ensure_backbone "${SEED:-}"

echo "== generate the detection dataset (data/synth, VOCdevkit layout)"
$YOLO2 synth --out data/synth --overwrite --train 2000 --test 300 --size 128 --min-object 32 --max-objects 3 --clutter 0 --seed 1

echo "== train $CONFIG"
$YOLO2 train --config "$CONFIG" --output "$RUN" --overwrite "${SEED_ARGS[@]}"

echo "== evaluate the best checkpoint on the generated test split"
$YOLO2 eval --checkpoint "$RUN/best.ckpt" --metric voc07 --output "$RUN/eval" --json "$RUN/eval/map.json"

end=$(date +%s)
echo
echo "demo finished in $((end - start)) s (the build excluded)"
echo "  backbone:      $PRETRAIN_RUN/backbone.conv.23 (top-1 in $PRETRAIN_RUN/eval.csv, $PRETRAIN_RUN/accuracy.png)"
echo "  checkpoints:   $RUN/best.ckpt, $RUN/last.ckpt"
echo "  logs:          $RUN/metrics.csv, $RUN/eval.csv"
echo "  plots:         $RUN/loss.png, $RUN/map.png, $RUN/eval/pr/pr_summary.png (and one per class)"
echo "  VOC results:   $RUN/eval/results/comp4_det_test_<class>.txt, $RUN/eval/map.json"
echo "  try:           $YOLO2 detect --checkpoint $RUN/best.ckpt --input data/synth/JPEGImages/002001.jpg --output $RUN/detect"
