# Sourced by scripts/demo.sh and scripts/experiment.sh: ensure_backbone makes (or reuses) the
# pretrained Darknet19 backbone runs/synth_pretrain/backbone.conv.23 (configs/synth_pretrain.yaml
# on the generated classification set data/synth_cls). The cache is rebuilt when it is missing or
# when the config, the data arguments, the seed or the yolo2 build differ from the ones that made it
# (runs/synth_pretrain.stamp). Needs $YOLO2.
PRETRAIN_CONFIG=${PRETRAIN_CONFIG:-configs/synth_pretrain.yaml}
PRETRAIN_RUN=${PRETRAIN_RUN:-runs/synth_pretrain}
CLS_ARGS=${CLS_ARGS:-"--train 14000 --test 700 --size 96 --clutter 0 --seed 2"}

# ensure_backbone [SEED]: the pretraining seed (empty: the config's runtime.seed).
ensure_backbone() {
  local seed=${1:-} seed_args=()
  [ -n "$seed" ] && seed_args=(--set "runtime.seed=$seed")
  local stamp
  stamp="$CLS_ARGS seed=${seed:-config} $(sha256sum "$PRETRAIN_CONFIG" | cut -c1-16) $("$YOLO2" version | head -1)"
  if [ -f "$PRETRAIN_RUN/backbone.conv.23" ] && [ "$(cat "$PRETRAIN_RUN.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "   cached (made earlier with the same config, data, seed and yolo2; delete $PRETRAIN_RUN to rebuild)"
    return
  fi
  # shellcheck disable=SC2086
  "$YOLO2" synth --classification --out data/synth_cls --overwrite $CLS_ARGS
  "$YOLO2" pretrain --config "$PRETRAIN_CONFIG" --output "$PRETRAIN_RUN" --overwrite "${seed_args[@]}"
  echo "$stamp" > "$PRETRAIN_RUN.stamp"
}
