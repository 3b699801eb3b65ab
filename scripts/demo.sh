#!/usr/bin/env bash
# The main job on the generated dataset, end to end: set up, build, generate a VOC-format dataset,
# train configs/synth_focal.yaml on the CPU, evaluate the best checkpoint (VOC07 mAP) and show
# where the plots are. About 12-14 minutes on 2 cores from a clean checkout (build included).
# `--torch pypi` builds against PyPI's LibTorch 2.x instead (scripts/torch-choice.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
source scripts/torch-choice.sh
torch_choice "$@"

torch_build --target yolo2
YOLO2=$BUILD_DIR/yolo2
CONFIG=${CONFIG:-configs/synth_focal.yaml}
RUN=runs/$(basename "$CONFIG" .yaml)

echo "== generate the dataset (data/synth, VOCdevkit layout)"
$YOLO2 synth --out data/synth --overwrite --train 2000 --test 300 --size 128 --min-object 32 --max-objects 3 --clutter 0 --seed 1

echo "== train $CONFIG"
$YOLO2 train --config "$CONFIG" --output "$RUN" --overwrite

echo "== evaluate the best checkpoint on the generated test split"
$YOLO2 eval --checkpoint "$RUN/best.ckpt" --metric voc07 --output "$RUN/eval" --json "$RUN/eval/map.json"

end=$(date +%s)
echo
echo "demo finished in $((end - start)) s"
echo "  checkpoints:   $RUN/best.ckpt, $RUN/last.ckpt"
echo "  logs:          $RUN/metrics.csv, $RUN/eval.csv"
echo "  plots:         $RUN/loss.png, $RUN/map.png, $RUN/eval/pr/pr_summary.png (and one per class)"
echo "  VOC results:   $RUN/eval/results/comp4_det_test_<class>.txt, $RUN/eval/map.json"
echo "  try:           $YOLO2 detect --checkpoint $RUN/best.ckpt --input data/synth/JPEGImages/002001.jpg --output $RUN/detect"
