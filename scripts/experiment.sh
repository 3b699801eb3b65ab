#!/usr/bin/env bash
# The focal-loss experiment on the generated long-tailed dataset: the same model and schedule
# (configs/synth_focal.yaml, or $CONFIG) with five class terms, each with several seeds, then
# a report with mean and standard deviation of the mAP, the rare classes' AP apart, training time,
# the exact commands, and the plots (docs/experiments-scratch.md; REGIME=pretrained:
# docs/experiments.md).
#
#   scripts/experiment.sh                 # 5 settings x 3 seeds (SEEDS="1 2 3")
#   SEEDS="1 2 3 4 5" ITERS=800 scripts/experiment.sh   # another length, lr steps scaled
#   SETTINGS="ce soft_gamma_0_to_2" scripts/experiment.sh  # only (and in this order) these settings
#   ALSO="runs/experiment500" scripts/experiment.sh   # the report also tabulates earlier OUT folders
#   REGIME=pretrained scripts/experiment.sh   # the seed's regime: from the pretrained backbone
#   PARALLEL=2 scripts/experiment.sh       # two 1-thread runs at a time
#   YOLO2=/tmp/yolo2 scripts/experiment.sh   # that binary, no build
#
# REGIME=pretrained (issue 17): configs/synth_focal_pretrained.yaml from the Darknet19 backbone that
# configs/synth_pretrain.yaml pretrains (made once, shared by every run: scripts/backbone-cache.sh),
# cross-entropy vs focal gamma 1, 2, 3 vs soft gamma (linear 0 -> 2, step 0 -> 1 -> 2), seeds 1-5
# paired (a seed gives every setting the same head initialisation, data order and augmentation),
# 3,000 iterations (ITERS; twice the demo's, so that cross-entropy's mAP flattens) with an evaluation
# every 250 for the curves, in runs/experiment_pretrained_<ITERS>; the report is docs/experiments.md
# with the paired differences to cross-entropy and their 95 % intervals, and the tables of the other
# lengths found in runs/experiment_pretrained_* (or ALSO). Finished runs are kept: rerun the script
# to continue after an interruption.
#
# STUDY=confirm or STUDY=longtail (issue 27, pre-registered in docs/experiments.md): the pretrained
# regime at 3,000 iterations, with
#   confirm:  cross-entropy and linear soft gamma on the new seeds 6-15, then seeds 1-5 again (their
#             per-seed rare-class APs were not kept), on data/experiment;
#   longtail: cross-entropy, focal gamma 2 and linear soft gamma on seeds 1-5, on data/experiment_longtail
#             (the same recipe at a 100:1 class ratio, 1,500 test images).
# Runs go to runs/study_<name>; each finished run's record (eval.csv, time, resolved config, command)
# is copied to docs/experiments/records/<name>/<setting>/seed<N>/, which is committed: a run with a
# record is not run again, so the study continues on a clean checkout. The report is the study's block
# in docs/experiments.md (between its markers; the rest of the file is left as it is).
#
# The seed changes the weight initialisation, the data order and the augmentation; the dataset is
# the same for every run (data/experiment, generated once with the demo's settings).
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-}
RECORDS=""
case $STUDY in
  "") ;;
  confirm) REGIME=pretrained; SEEDS=${SEEDS:-"6 7 8 9 10 11 12 13 14 15 1 2 3 4 5"}; SETTINGS=${SETTINGS:-"ce soft_gamma_linear"}
           OUT=${OUT:-runs/study_confirm} ;;
  longtail) REGIME=pretrained; SEEDS=${SEEDS:-"1 2 3 4 5"}; SETTINGS=${SETTINGS:-"ce focal_g2 soft_gamma_linear"}
            OUT=${OUT:-runs/study_longtail}; DATA=${DATA:-data/experiment_longtail}
            SYNTH_ARGS=${SYNTH_ARGS:-"--train 2000 --test 1500 --size 128 --min-object 32 --max-objects 3 --clutter 0 --seed 1 --imbalance 100"} ;;
  *) echo "STUDY: confirm or longtail, got '$STUDY'" >&2; exit 2 ;;
esac
[ -n "$STUDY" ] && RECORDS=docs/experiments/records/$STUDY
REGIME=${REGIME:-scratch}
case $REGIME in
  scratch) CONFIG=${CONFIG:-configs/synth_focal.yaml}; SEEDS=${SEEDS:-"1 2 3"}; OUT=${OUT:-runs/experiment}
           ITERS=${ITERS:-}; REPORT=docs/experiments-scratch.md ;;
  pretrained) CONFIG=${CONFIG:-configs/synth_focal_pretrained.yaml}; SEEDS=${SEEDS:-"1 2 3 4 5"}
              ITERS=${ITERS:-3000}; OUT=${OUT:-runs/experiment_pretrained_$ITERS}; REPORT=docs/experiments.md ;;
  *) echo "REGIME: scratch or pretrained, got '$REGIME'" >&2; exit 2 ;;
esac
# ITERS: the schedule's length (empty: the config's train.max_batches), lr steps at 80 % and 94 %.
# Runs at a time, each with runtime.threads = 2 / PARALLEL (two 1-thread runs on 2 cores finish
# about 1.4x sooner than one 2-thread run after the other). The thread count is part of each
# run's command line (it changes float rounding, so a run is reproduced with the same count).
PARALLEL=${PARALLEL:-1}
case $PARALLEL in 1|2) ;; *) echo "PARALLEL: 1 or 2, got '$PARALLEL'" >&2; exit 2 ;; esac
DATA=${DATA:-data/experiment}
SYNTH_ARGS=${SYNTH_ARGS:-"--train 2000 --test 300 --size 128 --min-object 32 --max-objects 3 --clutter 0 --seed 1"}
# YOLO2=PATH: run that binary (a copy made before editing the sources, so that a long experiment
# is not rebuilt under its feet); unset: build/yolo2, built first.
if [ -z "${YOLO2:-}" ]; then
  YOLO2=build/yolo2
  bash scripts/setup.sh >/dev/null
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "${JOBS:-2}" --target yolo2
fi

if [ ! -f "$DATA/classes.txt" ]; then
  # shellcheck disable=SC2086
  "$YOLO2" synth --out "$DATA" $SYNTH_ARGS
fi

if [ "$REGIME" = pretrained ]; then
  source scripts/backbone-cache.sh
  echo "== the pretrained backbone ($PRETRAIN_RUN/backbone.conv.23)"
  ensure_backbone
  NAMES=(ce focal_g1 focal_g2 focal_g3 soft_gamma_linear soft_gamma_step)
else
  NAMES=(ce focal_g2 focal_g2_alpha_auto soft_gamma_0_to_2 sigmoid_focal_g2)
fi
read -r -a RUN_NAMES <<< "${SETTINGS:-${NAMES[*]}}"
for name in "${RUN_NAMES[@]}"; do
  [[ " ${NAMES[*]} " == *" $name "* ]] || { echo "SETTINGS: unknown setting '$name' (known: ${NAMES[*]})" >&2; exit 2; }
done
# The class term of each setting (everything else is the config's; a constant gamma also resets a
# gamma schedule the config may have, as configs/synth_focal_pretrained.yaml does).
overrides_for() {
  local constant=(--set loss.focal.gamma_schedule.type=constant)
  case $1 in
    ce) OV=(--set loss.classification=ce "${constant[@]}") ;;
    focal_g1) OV=(--set loss.classification=focal --set loss.focal.gamma=1 --set loss.focal.alpha=1 "${constant[@]}") ;;
    focal_g2) OV=(--set loss.classification=focal --set loss.focal.gamma=2 --set loss.focal.alpha=1 "${constant[@]}") ;;
    focal_g3) OV=(--set loss.classification=focal --set loss.focal.gamma=3 --set loss.focal.alpha=1 "${constant[@]}") ;;
    soft_gamma_linear) OV=(--set loss.classification=focal --set loss.focal.alpha=1
                           --set "loss.focal.gamma_schedule={type: linear, start: 0, end: 2, span_begin: 0, span_end: 1}") ;;
    soft_gamma_step) OV=(--set loss.classification=focal --set loss.focal.alpha=1
                         --set "loss.focal.gamma_schedule={type: step, milestones: [0.3333, 0.6667], values: [0, 1, 2]}") ;;
    focal_g2_alpha_auto) OV=(--set loss.classification=focal --set loss.focal.gamma=2 --set loss.focal.alpha=auto
                             "${constant[@]}") ;;
    soft_gamma_0_to_2) OV=(--set loss.classification=focal --set loss.focal.alpha=1
                           --set "loss.focal.gamma_schedule={type: linear, start: 0, end: 2, span_begin: 0, span_end: 1}") ;;
    sigmoid_focal_g2) OV=(--set loss.classification=sigmoid_focal --set loss.focal.gamma=2 --set loss.focal.alpha=1
                          --set loss.focal.sigmoid_alpha=0.25 "${constant[@]}") ;;
  esac
}

# The command line of one run, in ARGS.
args_for() {
  local name=$1 seed=$2
  overrides_for "$name"
  ARGS=(train --config "$CONFIG" --output "$OUT/$name/seed$seed" --overwrite
        --set "data.train=[{root: $DATA, split: trainval}]" --set "data.test=[{root: $DATA, split: test}]"
        --set runtime.seed="$seed" --set eval.every="$([ "$REGIME" = pretrained ] && echo 250 || echo 0)" "${OV[@]}")
  if [ "$PARALLEL" = 2 ]; then ARGS+=(--set runtime.threads=1); fi
  if [ -n "$ITERS" ]; then  # another length: the lr steps keep their place (80% and 94%)
    ARGS+=(--set train.max_batches="$ITERS" --set "train.steps=[$((ITERS * 80 / 100)), $((ITERS * 94 / 100))]"
           --set data.multiscale_final=$((ITERS / 24)))
    [ "$REGIME" = pretrained ] || ARGS+=(--set eval.every=$((ITERS / 3)))
  fi
}

mkdir -p "$OUT"
# A study's record of one finished run (committed; the report reads the records, not runs/).
record_of() { echo "$RECORDS/$1/seed$2"; }
save_record() {
  local run="$OUT/$1/seed$2" rec tmp
  rec=$(record_of "$1" "$2"); tmp="$rec.partial"
  rm -rf "$tmp"; mkdir -p "$tmp"
  cp "$run/eval.csv" "$run/config.yaml" "$run/time" "$tmp/"
  cp "$run.cmd" "$tmp/cmd"
  touch "$tmp/done"
  rm -rf "$rec"; mv "$tmp" "$rec"
}
# One run; its folder gets `time` (start, end, runs at a time) and `done`, and $run.cmd its command.
run_one() {
  local name=$1 seed=$2 run="$OUT/$1/seed$2" start end
  args_for "$name" "$seed"
  printf '%q ' "$YOLO2" "${ARGS[@]}" > "$run.cmd"; echo >> "$run.cmd"
  # An interrupted run (a last.ckpt and $run.elapsed, no `done`) continues from its checkpoint:
  # --overwrite would throw its iterations away. Its log is appended to. $run.elapsed holds the
  # first start, the seconds earlier processes ran up to their last checkpoint (the work after it
  # is done again) and this process's start; `time` gets the first start and that start plus the
  # seconds of work (the gap before a resume not counted).
  local resumed="" before=0 t0 prev ckpt_time
  t0=$(date +%s.%N)
  if [ -f "$run/last.ckpt" ] && [ ! -f "$run/done" ] && [ -f "$run.elapsed" ]; then
    resumed=1; read -r start before prev < "$run.elapsed"
    ckpt_time=$(stat -c %Y "$run/last.ckpt")
    before=$(python3 -c "import sys; b, p, c = map(float, sys.argv[1:]); print(f'{b + max(0.0, c - p):.6f}')" \
             "$before" "$prev" "$ckpt_time")
  else
    start=$t0
  fi
  echo "$start $before $t0" > "$run.elapsed"
  if [ -n "$resumed" ]; then
    echo "== $name seed $seed: resumed from $run/last.ckpt"
    "$YOLO2" train --resume "$run/last.ckpt" >> "$run.log" 2>&1 || { echo "run failed: $run.log"; tail -5 "$run.log"; return 1; }
  else
    "$YOLO2" "${ARGS[@]}" > "$run.log" 2>&1 || { echo "run failed: $run.log"; tail -5 "$run.log"; return 1; }
  fi
  end=$(python3 -c "import sys; s, b, t0, t1 = map(float, sys.argv[1:]); print(f'{s + b + t1 - t0:.6f}')" \
        "$start" "$before" "$t0" "$(date +%s.%N)")
  echo "$start $end $PARALLEL" > "$run/time"
  touch "$run/done"
  if [ -n "$RECORDS" ]; then save_record "$name" "$seed"; fi
  echo "== $name seed $seed: $(grep -E "best mAP" "$run.log" | tail -1)"
}
# Seed by seed, so that every setting of a seed (a complete pair) finishes before the next seed.
running=0
for seed in $SEEDS; do
  for name in "${RUN_NAMES[@]}"; do
    run="$OUT/$name/seed$seed"
    mkdir -p "$OUT/$name"
    if [ -n "$RECORDS" ] && [ -f "$(record_of "$name" "$seed")/done" ]; then
      echo "== $name seed $seed: done already ($(record_of "$name" "$seed"))"; continue
    fi
    if [ -z "$RECORDS" ] && [ -f "$run/done" ]; then echo "== $name seed $seed: done already ($run)"; continue; fi
    echo "== $name seed $seed: started"
    run_one "$name" "$seed" &
    running=$((running + 1))
    if [ "$running" -ge "$PARALLEL" ]; then wait -n || { wait; exit 1; }; running=$((running - 1)); fi
  done
done
while [ "$running" -gt 0 ]; do wait -n || { wait; exit 1; }; running=$((running - 1)); done

# The commands of every run in OUT (this invocation's and earlier ones'), for the report.
COMMANDS="$OUT/commands.txt"
cat "$OUT"/*/seed*.cmd > "$COMMANDS" 2>/dev/null || true
if [ -n "$STUDY" ]; then
  # The study's block of docs/experiments.md, from the committed records (every session's runs).
  python3 scripts/experiment_report.py --study "$STUDY" "$RECORDS" "$CONFIG" "$DATA" "$SYNTH_ARGS" - "$REPORT"
elif [ "$REGIME" = pretrained ]; then
  # The other lengths of the pretrained regime are tabulated too (ALSO overrides the list).
  EARLIER=${ALSO:-$(for d in runs/experiment_pretrained_*; do [ -d "$d" ] && [ "$d" != "$OUT" ] && echo "$d"; done)}
  # shellcheck disable=SC2086
  python3 scripts/experiment_report.py --pretrained "$OUT" "$CONFIG" "$DATA" "$SYNTH_ARGS" "$COMMANDS" "$REPORT" $EARLIER
else
  # shellcheck disable=SC2086
  python3 scripts/experiment_report.py "$OUT" "$CONFIG" "$DATA" "$SYNTH_ARGS" "$COMMANDS" "$REPORT" ${ALSO:-}
fi
echo "wrote $REPORT"
