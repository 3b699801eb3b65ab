#!/usr/bin/env bash
# The GPU checks of issue 14, in one go on a machine with an NVIDIA GPU and PyTorch's torch wheel
# (torch==2.11.0+cu130, as build-pypi/ was built against) but none of yolo2's other libraries: runs
# the package that scripts/gpu-pack.sh made on the build machine (gpu-pkg/yolo2-gpu-pkg.tar.xz).
#
#   scripts/gpu-check.sh              # on the GPU machine; writes to $OUT (gpu-pkg/out when unset)
#   scripts/gpu-check.sh --dry-run    # anywhere (or GPU_CHECK_DRY_RUN=1): the same steps on the CPU
#                                     # (fp32 and bf16 only), at toy sizes, into gpu-pkg/dry-run-out
#
# Steps (each under `timeout`; a step's limit is cut to what is left of GPU_CHECK_BUDGET, 510 s by
# default, so that the whole run ends inside a 10-minute command; a step with under 10 s left is
# skipped; limit, then the expected time on an H200 in []). Precisions run in the order bf16, tf32,
# fp16, fp32: issue 14's targets first.
#   0. unpack the package; find torch (python3 -c 'import torch') and the nvidia-* wheels' lib dirs;
#      check that every library resolves (ldd) and that the base system is new enough    60 s  [5 s]
#   1. yolo2 version, nvidia-smi, torch's own view of the GPU                             60 s  [10 s]
#      (in the background meanwhile: yolo2 synth of the three generated datasets: the demo's, the
#      loader's 300 500-px images, and EVAL_IMAGES (4,952, VOC2007 test's size) 500-px test images)
#   2. yolo2_tests --gtest_filter='Cuda*' (tests/test_cuda.cpp; CudaDevice.* included)    240 s [60-120 s]
#   3. THE throughput comparison, yolov2-voc (width 1, 20 classes) at 416, batch 64 in one pass,
#      channels-last, per precision, each pair back to back:
#      `yolo2 bench --no-loader --no-opencv --repeats 20` on runtime.device=cuda in
#      runtime.precision=P (its train_iteration: synthetic input on the GPU, forward under autocast,
#      region loss, backward, fp16 loss scaling, SGD step; phases, peak GPU memory, forward at
#      batch 1 and 64, decode + NMS on the GPU)                                          4 x 60 s [4 x 20 s]
#      and scripts/torch_reference_bench.py (same network, batch, size, precision,
#      channels-last, cudnn.benchmark)                                                   4 x 60 s [4 x 20 s]
#   4. evaluation speed: a 1-iteration `yolo2 train` of yolov2-voc for a checkpoint     60 s  [10-15 s]
#      (20 classes: the eval set's 10 shapes + 10 VOC names), then `yolo2 eval` of it on
#      the 4,952 generated test images on CUDA, end to end (loader, forward, decode, NMS,
#      VOC07 scoring; issue 14's target: under 15 s)                                      90 s  [15-25 s]
#   5. a short CUDA training run on generated data: configs/synth_focal.yaml (the from-scratch demo
#      detector, DEMO_ITERS 2,400 iterations) on data/synth's recipe, then its VOC07 mAP   240 s [60-120 s]
#   6. secondary, as far as the budget goes: the loader's rate (`yolo2 bench` on the CPU,
#      width 0.25, loader on the 300 500-px JPEGs, 416 px, batch 64)                       60 s  [10 s]
#      and `yolo2 train` end to end per precision, TP_ITERS (30) iterations on those JPEGs
#      through the augmenting loader: near the loader's rate means loader-bound          4 x 90 s [4 x 25 s]
#   6b. the rest of the suite (yolo2_tests --gtest_filter='-Cuda*'), as far as the budget goes  240 s
#   7. $OUT/performance-gpu.md (a section for docs/performance.md: device, driver, versions, the
#      yolo2 / PyTorch ratio table, phases, memory, inference, eval speed, the demo's mAP),
#      $OUT/gpu-check.log, $OUT/gpu-check-logs.tar.gz (every step's log, metrics.csv, JSON)
# Expected in all: about 480-500 s on an H200, so the last `yolo2 train` runs of step 6 may be
# skipped. The markdown is rewritten after every step, so a run cut short still returns what it
# measured.
#
# Env: GPU_CHECK_PACKAGE (gpu-pkg/yolo2-gpu-pkg.tar.xz), GPU_CHECK_BUDGET (510), PYTHON (python3),
# TP_ITERS (30), TP_WARMUP (10: iterations left out of the median), DEMO_ITERS (2400), EVAL_IMAGES
# (4952), GPU_CHECK_KEEP (1: keep the work dir in /tmp).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$PWD

DRY=${GPU_CHECK_DRY_RUN:-0}
for a in "$@"; do
  case "$a" in
    --dry-run) DRY=1 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
[ "$DRY" = 1 ] && OUT=${GPU_CHECK_OUT:-gpu-pkg/dry-run-out} || OUT=${OUT:-${GPU_CHECK_OUT:-gpu-pkg/out}}
PACKAGE=${GPU_CHECK_PACKAGE:-gpu-pkg/yolo2-gpu-pkg.tar.xz}
BUDGET=${GPU_CHECK_BUDGET:-510}
RESERVE=15 # seconds kept for the report after the last step
PY=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ "$DRY" = 1 ] && rm -f "$OUT/performance-gpu.md" "$OUT/gpu-check.log" "$OUT/gpu-check-logs.tar.gz"
WORK=$(mktemp -d /tmp/yolo2-gpu-check.XXXXXX)
R=$WORK/results # what the report reads: facts.tsv, steps.tsv, *.json, *.csv, logs/
mkdir -p "$R/logs"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
# On exit, end what is still running in the background (the samplers, the synth runs): by PID, no
# bare `wait` (it would wait for the tee above, which waits for this shell's output to end).
# The work dir (unpacked package, data, runs) goes too unless GPU_CHECK_KEEP=1.
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local j
  for j in $(jobs -p); do kill "$j" 2>/dev/null; done
  [ "${GPU_CHECK_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
T0=$SECONDS
say() { printf '[gpu-check %4ds] %s\n' $((SECONDS - T0)) "$*"; }
say "mode: $([ "$DRY" = 1 ] && echo "DRY RUN (CPU, toy sizes)" || echo GPU); budget ${BUDGET} s; work dir $WORK; out $OUT"
echo "mode	$([ "$DRY" = 1 ] && echo dry-run || echo gpu)" >"$R/facts.tsv"
fact() { printf '%s\t%s\n' "$1" "$2" >>"$R/facts.tsv"; }

# step NAME LIMIT_S CMD...: run with its output in logs/NAME.log, the limit cut to the budget left;
# records NAME, exit status (124: timed out), whole seconds and wall seconds to 0.01 s in steps.tsv;
# prints the log's last lines.
step() {
  local name=$1 limit=$2 left rc t t0 wall
  shift 2
  left=$((BUDGET - (SECONDS - T0) - RESERVE))
  if [ "$left" -lt 10 ]; then
    say "SKIP $name: the budget is spent"
    printf '%s\tskipped\t0\t0\n' "$name" >>"$R/steps.tsv"
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "START $name (limit ${limit} s): $*"
  t=$SECONDS
  t0=$(date +%s.%N)
  timeout --kill-after=10 "$limit" "$@" >"$R/logs/$name.log" 2>&1
  rc=$?
  wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" $((SECONDS - t)) "$wall" >>"$R/steps.tsv"
  tail -n 6 "$R/logs/$name.log" | sed 's/^/    | /'
  say "END $name: exit $rc$([ $rc = 124 ] && echo ' (TIMED OUT)') after $wall s"
  return $rc
}
# --- 0. the package, torch, the library path ------------------------------------------------------
[ -f "$PACKAGE" ] || { say "FATAL: $PACKAGE is missing: run scripts/gpu-pack.sh on the build machine and carry it"; exit 1; }
tar -C "$WORK" -xJf "$PACKAGE" || { say "FATAL: cannot unpack $PACKAGE"; exit 1; }
PKG=$WORK/yolo2-gpu
YOLO2=$PKG/bin/yolo2
TESTS=$PKG/bin/yolo2_tests
cp "$PKG/MANIFEST" "$R/MANIFEST"
say "package: $(du -b "$PACKAGE" | cut -f1) bytes, $(sed -n 2p "$PKG/MANIFEST")"

if ! "$PY" -c 'import torch' 2>/dev/null && [ -d "$REPO/.torch-pypi/torch" ]; then
  export PYTHONPATH=$REPO/.torch-pypi${PYTHONPATH:+:$PYTHONPATH} # the build machine's torch (dry run there)
fi
TORCH_DIR=$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null) ||
  { say "FATAL: $PY cannot import torch"; exit 1; }
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
SITE=$(dirname "$TORCH_DIR")
LIBPATH=$PKG/lib:$TORCH_DIR/lib
for d in "$SITE"/nvidia/*/lib; do [ -d "$d" ] && LIBPATH=$LIBPATH:$d; done
export LD_LIBRARY_PATH=$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
say "torch $TORCH_VERSION at $TORCH_DIR; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
fact torch "$TORCH_VERSION"
WANT=$(sed -n 's/^built against torch //p' "$PKG/MANIFEST")
[ "$WANT" = "$TORCH_VERSION" ] || say "WARNING: the package was built against torch $WANT, this is $TORCH_VERSION: LibTorch's C++ ABI may differ"

# The base system: glibc and libstdc++ new enough for Debian 12's libraries.
GLIBC=$(ldd --version 2>&1 | head -1 | grep -Eo '[0-9]+\.[0-9]+$')
NEED_GLIBC=$(sed -n 's/^requires GLIBC_//p' "$PKG/MANIFEST")
fact glibc "$GLIBC"
if [ "$(printf '%s\n%s\n' "$NEED_GLIBC" "$GLIBC" | sort -V | head -1)" != "$NEED_GLIBC" ]; then
  say "FATAL: glibc $GLIBC is older than the $NEED_GLIBC the package needs"
  exit 1
fi
# Every library resolves: from the package, the wheel, or the system (glibc, libstdc++, libgcc_s).
{
  for b in "$YOLO2" "$TESTS"; do echo "== ldd $b"; ldd "$b"; done
  # The loader's own account (LD_DEBUG=libs, all symbols bound at load): each library searched for
  # and the file it was found in (the last one tried), then the initialisation order.
  echo "== LD_DEBUG=libs LD_BIND_NOW=1 yolo2 --help: library -> file"
  LD_BIND_NOW=1 LD_DEBUG=libs "$YOLO2" --help 2>&1 >/dev/null | awk '
    /find library=/ { if (lib != "") print "  " lib " -> " last
                      match($0, /find library=[^ ]+/); lib = substr($0, RSTART + 13, RLENGTH - 13); next }
    /trying file=/  { sub(/.*trying file=/, ""); last = $0; next }
    /calling init:/ { if (lib != "") print "  " lib " -> " last; lib = ""; sub(/.*calling init: /, ""); print "  init " $0 }'
} >"$R/logs/libraries.log" 2>&1
if grep -q "not found" "$R/logs/libraries.log"; then
  say "FATAL: libraries not found:"; grep "not found" "$R/logs/libraries.log" | sort -u; exit 1
fi
OUTSIDE=$(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 == "init" && $2 ~ /^\// {print $2}' "$R/logs/libraries.log" | sort -u |
  grep -v -e "^$PKG/lib/" -e "^$TORCH_DIR/lib/" -e "^$SITE/nvidia/" |
  grep -Ev '/(ld-linux-x86-64|libc|libm|libdl|librt|libpthread|libutil|libresolv|libstdc\+\+|libgcc_s)\.so[.0-9]*$' || true)
OUTSIDE=$(printf '%s' "$OUTSIDE" | tr '\n' ' ')
[ -z "$OUTSIDE" ] || say "WARNING: libraries from outside the package, the wheel and glibc/libstdc++: $OUTSIDE"
fact libraries_outside "$OUTSIDE"
say "libraries: all resolve ($(grep -c "=> $PKG/lib/" "$R/logs/libraries.log") package, $(grep -Ec "=> ($TORCH_DIR/lib|$SITE/nvidia)/" "$R/logs/libraries.log") wheel lines in ldd)"

# --- settings: the GPU run, or the dry run's toy sizes on the CPU ---------------------------------
NPROC=$(nproc)
WORKERS=$((NPROC > 4 ? NPROC - 2 : 2))
EVAL_IMAGES=${EVAL_IMAGES:-4952}
if [ "$DRY" = 1 ]; then
  DEVICE=cpu
  PRECISIONS="bf16 fp32" # tf32 and fp16 need CUDA (yolo2 and the reference both refuse them on the CPU)
  TEST_FILTER='Config*:Nms*:Cuda*'
  TP_ITERS=${TP_ITERS:-4} TP_WARMUP=${TP_WARMUP:-1} DEMO_ITERS=${DEMO_ITERS:-4}
  TOY=(--set model.width=0.25 --set data.input_size=64 --set train.batch=2)
  BENCH_SET=("${TOY[@]}" --repeats 2)
  REF_ARGS=(--device cpu --batch 2 --size 64 --width 0.25 --iters 2 --warmup 1)
  TP_SET=("${TOY[@]}")
  CKPT_SET=("${TOY[@]}")
  LOADER_SET=(--set data.input_size=64 --set train.batch=2 --repeats 1 --batches 2)
  DEMO_SET=(--set train.batch=4 --set 'data.multiscale_sizes=[96]' --set data.multiscale_final=0)
  SYNTH_DEMO=(--train 24 --test 8) SYNTH_BENCH=(--train 12) SYNTH_EVAL=(--test 16 --size 96)
else
  DEVICE=cuda
  PRECISIONS="bf16 tf32 fp16 fp32"
  TEST_FILTER='Cuda*'
  TP_ITERS=${TP_ITERS:-30} TP_WARMUP=${TP_WARMUP:-10} DEMO_ITERS=${DEMO_ITERS:-2400}
  BENCH_SET=(--set train.batch=64 --set data.input_size=416 --repeats 20)
  REF_ARGS=(--device cuda --batch 64 --size 416 --iters 20 --warmup 5)
  TP_SET=(--set train.batch=64)
  CKPT_SET=(--set train.batch=8)
  LOADER_SET=(--set train.batch=64 --repeats 1 --batches 10)
  DEMO_SET=()
  SYNTH_DEMO=(--train 2000 --test 300) SYNTH_BENCH=(--train 300) SYNTH_EVAL=(--test "$EVAL_IMAGES" --size 500)
fi
fact device "$DEVICE"
fact workers "$WORKERS"
fact tp_iters "$TP_ITERS"
fact tp_warmup "$TP_WARMUP"
fact cpus "$NPROC"
fact test_filter "$TEST_FILTER"
fact bench_set "runtime.device=$DEVICE runtime.channels_last=true train.subdivisions=1 $(printf '%s ' "${BENCH_SET[@]}" | sed 's/--set //g; s/ $//') --no-loader --no-opencv"
fact tp_set "train.subdivisions=1 $(printf '%s ' "${TP_SET[@]}" | sed 's/--set //g; s/ $//')"
fact ref_args "${REF_ARGS[*]}"
fact synth_demo "${SYNTH_DEMO[*]}"
fact synth_eval "--train 1 ${SYNTH_EVAL[*]} --classes 10 --max-objects 4 --seed 3"

# The report: performance-gpu.md from the files in $R (python3: argv = results dir, output, seconds).
IFS= read -r -d '' REPORT_PY <<'PYEOF' || true
import csv, json, os, re, statistics, sys, xml.etree.ElementTree as ET

R, out, elapsed = sys.argv[1], sys.argv[2], int(sys.argv[3])

def read(name, default=""):
    try:
        return open(os.path.join(R, name)).read().strip()
    except OSError:
        return default

def load_json(name):
    try:
        return json.loads(read(name))
    except ValueError:
        return None

facts = dict(l.split("\t", 1) for l in read("facts.tsv").splitlines() if "\t" in l)
steps = [l.split("\t") for l in read("steps.tsv").splitlines() if l]
status = {s[0]: s[1] for s in steps}
wall = {s[0]: float(s[3]) for s in steps if len(s) > 3 and s[1] != "skipped"}
dry = facts.get("mode") == "dry-run"
version = load_json("version.json") or {}
torchj = load_json("torch.json") or {}
gpu = [x.strip() for x in read("gpu.csv").split(",")] if read("gpu.csv") else []
manifest = read("MANIFEST").splitlines()
commit = next((l.split()[1] for l in manifest if l.startswith("commit ")), "?")
precisions = [p for p in ("fp32", "tf32", "bf16", "fp16") if any(k + p in status for k in ("bench-", "torch-", "train-"))]

def num(v, digits=1):
    return "-" if v is None else f"{v:,.{digits}f}"

def train_rate(p):
    """Median images/s of metrics.csv after the warm-up iterations."""
    try:
        rows = list(csv.DictReader(open(os.path.join(R, f"train-{p}.metrics.csv"))))
    except OSError:
        return None, 0
    warm = int(facts.get("tp_warmup", "10"))
    v = [float(r["images_per_s"]) for r in rows[warm:]] or [float(r["images_per_s"]) for r in rows[1:]]
    return (statistics.median(v) if v else None), len(v)

def sampled(name):
    try:
        rows = [l.split(",") for l in open(os.path.join(R, f"gpu-{name}.csv")) if l.strip()]
        util = [float(r[0]) for r in rows if r[0].strip().isdigit()]
        mem = [float(r[1]) for r in rows if r[1].strip().isdigit()]
        busy = [u for u in util if u > 0]
        return (statistics.mean(busy) if busy else None), (max(mem) if mem else None)
    except (OSError, IndexError, ValueError):
        return None, None

def step_status(name):
    s = status.get(name)
    return {None: "not run", "0": "ok", "124": "TIMED OUT", "125": "skipped", "skipped": "skipped (budget)"}.get(s, f"exit {s}")

def bench(p):
    """yolo2 bench's JSON for precision p: (the whole object, {id: result})."""
    j = load_json(f"bench-{p}.json")
    if not isinstance(j, dict):
        return {}, {}
    return j, {r.get("id"): r for r in j.get("results", [])}

def value(res, rid):
    r = res.get(rid)
    return r.get("value") if r else None

def phases(res):
    """forward / loss / backward / step ms from train_phases' note."""
    m = re.match(r"\s*([\d.]+) / ([\d.]+) / ([\d.]+) / ([\d.]+) ms", (res.get("train_phases") or {}).get("note", ""))
    return [float(x) for x in m.groups()] if m else [None] * 4

gpus_text = "; ".join(f"{g.get('name')} ({g.get('memory_mib')} MiB, {g.get('compute_capability')})" if isinstance(g, dict)
                      else str(g) for g in version.get("gpus", [])) or "none"
L = []
title = gpu[0] if gpu else ("CPU dry run" if dry else "no GPU seen")
L.append(f"## GPU: {title} (scripts/gpu-check.sh{' --dry-run' if dry else ''})")
L.append("")
if dry:
    L.append("**DRY RUN on the CPU at toy sizes: these figures only show that the steps and the report work; "
             "they are not measurements.**")
    L.append("")
machine = []
if gpu:
    machine.append(f"{gpu[0]} ({gpu[2] if len(gpu) > 2 else '?'}, compute capability {gpu[3] if len(gpu) > 3 else '?'}), "
                   f"driver {gpu[1] if len(gpu) > 1 else '?'}")
machine.append(f"{facts.get('cpus', '?')} CPU cores, glibc {facts.get('glibc', '?')}")
L.append("Machine: " + "; ".join(machine) + ".")
L.append(f"yolo2 {version.get('yolo2', '?')} at commit {commit[:12]}, built on Debian 12 ({version.get('compiler', '?')}) "
         f"against LibTorch {version.get('libtorch', '?')} and run with this machine's torch wheel "
         f"{facts.get('torch', '?')} (CUDA runtime {version.get('cuda_runtime', '?')}, cuDNN {version.get('cudnn', '?')}, "
         f"NCCL {version.get('nccl', '?')}; driver as yolo2 sees it: {version.get('cuda_driver') or 'none'}; "
         f"GPUs: {gpus_text}); "
         f"OpenCV {version.get('opencv', '?')} and the other Debian libraries from scripts/gpu-pack.sh's package. "
         f"Run took {elapsed} s.")
if facts.get("libraries_outside"):
    L.append(f"Libraries resolved outside the package/wheel/glibc: {facts['libraries_outside']}.")
L.append("")

# Tests
L.append("### GPU tests")
L.append("")
try:
    root = ET.parse(os.path.join(R, "tests.xml")).getroot()
    rows, n = [], {"passed": 0, "failed": 0, "skipped": 0}
    for c in root.iter("testcase"):
        name = f"{c.get('classname')}.{c.get('name')}"
        if c.find("failure") is not None:
            res = "FAILED"; n["failed"] += 1
        elif c.get("result") == "skipped" or c.find("skipped") is not None:
            res = "skipped"; n["skipped"] += 1
        else:
            res = "passed"; n["passed"] += 1
        rows.append((name, res, float(c.get("time", "0"))))
    L.append(f"`yolo2_tests --gtest_filter='{facts.get('test_filter', '?')}'`: {len(rows)} tests, "
             f"{n['passed']} passed, {n['failed']} failed, {n['skipped']} skipped ({step_status('tests')}).")
    L.append("")
    L.append("| test | result | seconds |")
    L.append("|---|---|---|")
    for name, res, t in rows:
        if dry and not name.startswith("Cuda"):
            continue
        L.append(f"| {name} | {res} | {t:.1f} |")
except (OSError, ET.ParseError):
    L.append(f"No test results ({step_status('tests')}; see logs/tests.log).")
L.append("")

# Throughput: yolo2 bench's train_iteration against the PyTorch reference (issue 14's ratio)
lj = load_json("loader.json")
loader = value({r.get("id"): r for r in lj.get("results", [])} if isinstance(lj, dict) else {}, "loader")
L.append("### Training throughput: yolo2 / PyTorch, yolov2-voc (width 1, 20 classes) at 416, batch 64, channels-last"
         if not dry else "### Training throughput (dry run: width 0.25, 64 px, batch 2, on the CPU)")
L.append("")
L.append("| precision | yolo2 bench `train_iteration` (images/s) | PyTorch reference (images/s) | **yolo2 / PyTorch** | "
         "issue 14 target | yolo2 train end to end (images/s; secondary) | GPU busy in yolo2 train |")
L.append("|---|---|---|---|---|---|---|")
where = []
for p in precisions:
    j, res = bench(p)
    y = value(res, "train_iteration")
    t = load_json(f"torch-{p}.json") or {}
    tr = t.get("images_per_s")
    ratio = y / tr if y and tr else None
    if dry:
        target = "-"
    elif p in ("bf16", "tf32"):
        target = "-" if ratio is None else ("met (>= 1.0)" if ratio >= 1.0 else "NOT met (< 1.0)")
    else:
        target = "(reported)"
    e2e, _ = train_rate(p)
    util, _ = sampled("train-" + p)
    L.append(f"| {p} | {num(y) if y else step_status('bench-' + p)} | {num(tr) if tr else step_status('torch-' + p)} | "
             f"**{num(ratio, 2)}** | {target} | {num(e2e) if e2e else step_status('train-' + p)} | "
             f"{num(util, 0) + ' %' if util is not None else '-'} |")
    if j and (j.get("device", "").split(":")[0] != facts.get("device") or j.get("precision") != p):
        where.append(f"{p}: yolo2 bench reports device {j.get('device')}, precision {j.get('precision')}")
L.append("")
if where:
    L.append("**WARNING: " + "; ".join(where) + ".**")
    L.append("")
L.append(f"yolo2 (the ratio's figure): `yolo2 bench --config configs/voc_ce.yaml --set runtime.precision=P` with "
         f"`{facts.get('bench_set', '?')}`: `train_iteration` is the mean of 10 iterations run back to back with one "
         f"wait at the end (forward under the precision's autocast, yolo2's region loss in fp32 on 6 random boxes per "
         f"image, backward, fp16 loss scaling and unscaling, SGD step with momentum), after 1 warm-up; synthetic input "
         f"already on the GPU, no loader. "
         f"PyTorch: `scripts/torch_reference_bench.py {facts.get('ref_args', '?')} --precision P` (the same network, "
         f"batch and size; random input on the GPU, a stand-in loss (mean squared output), `cudnn.benchmark`, "
         f"channels-last, autocast + GradScaler; the mean of 20 iterations run back to back after 5 warm-ups). "
         f"Target (issue 14): yolo2 / PyTorch >= 1.0 in bf16 and tf32; fp16 and fp32 are reported.")
L.append("")
L.append(f"Secondary, end to end: `yolo2 train --config configs/voc_ce.yaml` with `{facts.get('tp_set', '?')}`, "
         f"no multi-scale, `--no-eval`, no initial weights, {facts.get('tp_iters', '?')} iterations; the median of "
         f"metrics.csv's `images_per_s` (batch / wall time of the whole iteration: loader wait, forward, region loss, "
         f"backward, SGD step) after the first {facts.get('tp_warmup', '?')}. Data: 300 generated 500-px JPEGs "
         f"(bench.sh's recipe) through the full augmenting loader with {facts.get('workers', '?')} workers, the class "
         f"list the eval step's (the set's shapes are real objects: the region loss has positives). GPU busy: mean "
         f"`utilization.gpu` of nvidia-smi samples (200 ms) above 0 during that run. These runs come last and only "
         f"as far as the time budget goes.")
if loader:
    L.append("")
    L.append(f"The loader alone (`yolo2 bench` on this host's CPU, same data, 416 px, batch 64, "
             f"{facts.get('workers', '?')} workers, full augmentation): **{num(loader)} images/s**. An end-to-end "
             f"figure near it is loader-bound, not GPU-bound; a `train_iteration` above it means real training on "
             f"this host would wait for the loader.")
L.append("")

# Per precision: phases, memory, inference
if any(bench(p)[1] for p in precisions):
    L.append("### yolo2 bench per precision: iteration phases and memory")
    L.append("")
    L.append("| precision | forward (ms) | region loss (ms) | backward (ms) | step (ms) | sum (ms) | yolo2 peak GPU memory (MiB) | "
             "PyTorch peak GPU memory (MiB) | PyTorch ms / iteration | yolo2 peak host RSS (MiB) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for p in precisions:
        _, res = bench(p)
        if not res:
            continue
        f, lo, b, s = phases(res)
        t = load_json(f"torch-{p}.json") or {}
        L.append(f"| {p} | {num(f)} | {num(lo)} | {num(b)} | {num(s)} | {num(value(res, 'train_phases'))} | "
                 f"{num(value(res, 'train_peak_gpu_memory'), 0)} | {num(t.get('peak_gpu_memory_mib'), 0)} | "
                 f"{num(t.get('ms_per_iteration'))} | {num(value(res, 'train_peak_memory'), 0)} |")
    L.append("")
    L.append("Phases: `train_phases`, medians of iterations synchronised after each phase (their sum exceeds "
             "the whole iteration's time, batch / `train_iteration`, by those synchronisations). yolo2's peak GPU memory: "
             "`train_peak_gpu_memory`, LibTorch's caching allocator's peak (torch.cuda.max_memory_allocated) from "
             "before the warm-up iteration, so cuDNN's autotuning workspaces count; PyTorch's: the same counter "
             "reset after its 5 warm-ups.")
    L.append("")
    batchn = 64 if any("forward_batch64" in bench(p)[1] for p in precisions) else 8
    L.append("### yolo2 bench per precision: inference and the reference convolution")
    L.append("")
    L.append(f"| precision | forward batch 1 (ms) | forward batch {batchn} (images/s) | decode + NMS per image (ms) | "
             f"reference 3x3 conv fwd+bwd (GFLOP/s) | VOC scoring, 5,000 images (ms) | device |")
    L.append("|---|---|---|---|---|---|---|")
    for p in precisions:
        j, res = bench(p)
        if not res:
            continue
        L.append(f"| {p} | {num(value(res, 'forward_batch1'), 2)} | {num(value(res, f'forward_batch{batchn}'))} | "
                 f"{num(value(res, 'decode_nms'), 3)} | {num(value(res, 'reference_conv_both'), 0)} | "
                 f"{num(value(res, 'voc_scoring'))} | {j.get('device', '?')} |")
    L.append("")
    L.append("Forward: the network in eval mode under the precision's autocast, input on the device; decode + NMS: "
             "one image's output, on the device, detections back on the host (`decode_nms`); VOC scoring runs on the "
             "host. Every figure of every run: bench-P.json in gpu-check-logs.tar.gz.")
    L.append("")

# Evaluation speed
L.append("### Evaluation speed: `yolo2 eval` on generated test images")
L.append("")
ev = read("logs/eval.log")
m = re.search(r"eval: (\d+) images in ([\d.]+) s \(([\d.]+) images/s\), (\d+) detections", ev)
mp = load_json("eval-map.json") or {}
if m and "eval" in wall:
    n_img, t_in, ips_in, n_det = int(m.group(1)), float(m.group(2)), float(m.group(3)), int(m.group(4))
    t_all = wall["eval"]
    util, mem = sampled("eval")
    met = "met" if t_all < 15 else ("met in-process only" if t_in < 15 else "NOT met")
    L.append(f"| images | end to end (s) | images/s end to end | in-process (s) | images/s in-process | detections | "
             f"GPU busy | issue 14 target (< 15 s) |")
    L.append("|---|---|---|---|---|---|---|---|")
    L.append(f"| {n_img:,} | **{t_all:.1f}** | {n_img / t_all:,.1f} | {t_in:.1f} | {ips_in:,.1f} | {n_det:,} | "
             f"{num(util, 0) + ' %' if util is not None else '-'} | {met if not dry else '-'} |")
    L.append("")
    L.append(f"`yolo2 eval --checkpoint CKPT --data SET --split test --metric voc07 --json FILE --set "
             f"runtime.device={facts.get('device')} --set data.workers={facts.get('workers', '?')}` (no `--output`: no "
             f"results files or PR plots). End to end: the command's wall time (process start, CUDA start-up, checkpoint "
             f"load, parsing {n_img:,} annotations, the loader's JPEG decoding and resizing, forward at eval.batch 8, "
             f"decode, NMS, VOC07 scoring); in-process: yolo2's own figure (loader to scoring). Set: `yolo2 synth "
             f"{facts.get('synth_eval', '?')}` (VOC2007 test's image count and about its objects per image). "
             f"Checkpoint: {'the toy network' if dry else 'yolov2-voc (width 1, 416 px)'} after {facts.get('ckpt_iters', '1')} training iteration "
             f"(`{step_status('eval-ckpt')}`), with 20 classes `{facts.get('eval_classes', '?')}`: the set's shapes "
             f"then VOC names, so the head is VOC's 20-class one and the ground truth is scored. The network is "
             f"untrained: its scores are near uniform, so many boxes pass eval.conf_thresh 0.005 and decode and NMS "
             f"work near their cap (eval.max_detections 100 per image: compare the detections with 100 x images), "
             f"more than a trained network's; its mAP ({num(mp.get('map'), 4)}) means nothing.")
else:
    L.append(f"No evaluation timing (checkpoint: {step_status('eval-ckpt')}, eval: {step_status('eval')}; "
             f"see logs/eval-ckpt.log, logs/eval.log).")
L.append("")

# Demo
L.append("### A short training run on generated data")
L.append("")
mp = load_json("demo-map.json") or {}
rows = []
try:
    rows = list(csv.DictReader(open(os.path.join(R, "demo.metrics.csv"))))
except OSError:
    pass
ips = statistics.median([float(r["images_per_s"]) for r in rows[10:]] or [0]) if rows else None
demo_s = next((int(s[2]) for s in steps if s[0] == "demo"), None)
if mp.get("map") is not None:
    L.append(f"`configs/synth_focal.yaml` (width 0.25, softmax focal loss with soft gamma, Adam, batch 32 at 96-160 px, "
             f"from scratch) on a generated set (`yolo2 synth {facts.get('synth_demo', '?')} --size 128 --min-object 32 "
             f"--max-objects 3 --clutter 0 --seed 1`, demo.sh's recipe), "
             f"{len(rows)} iterations on {facts.get('device')}: **VOC07 mAP {mp['map']:.4f}** on the test split, "
             f"{demo_s} s for training and the final evaluation, median {num(ips)} images/s.")
else:
    L.append(f"No mAP ({step_status('demo')} / eval {step_status('demo-eval')}; see logs/demo.log).")
L.append("")

L.append("### Steps")
L.append("")
L.append("| step | status | seconds |")
L.append("|---|---|---|")
for s in steps:
    L.append(f"| {s[0]} | {step_status(s[0])} | {s[3] if len(s) > 3 else s[2]} |")
L.append("")
open(out, "w").write("\n".join(L) + "\n")
PYEOF

report() { # the markdown, from $R; rerun after every step
  "$PY" - "$R" "$OUT/performance-gpu.md" $((SECONDS - T0)) <<<"$REPORT_PY" || say "WARNING: the report failed"
  tar -C "$R" -czf "$OUT/gpu-check-logs.tar.gz.tmp" . && mv "$OUT/gpu-check-logs.tar.gz.tmp" "$OUT/gpu-check-logs.tar.gz"
}

# GPU sampler: memory used and utilisation every 200 ms while a step runs (GPU mode only).
sampler_start() {
  SAMPLER=
  [ "$DRY" = 1 ] || ! command -v nvidia-smi >/dev/null && return
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 >"$R/gpu-$1.csv" 2>/dev/null &
  SAMPLER=$!
}
sampler_stop() { [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null; SAMPLER=; }

# The 20 class names of the eval checkpoint (and of the end-to-end training runs): ROOT/classes.txt
# (the synth set's shapes), then VOC's first names up to 20, so that the network has yolov2-voc's
# 20-class head and the generated objects are known classes. Prints a YAML flow list.
VOC_NAMES=(aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person
  pottedplant sheep sofa train tvmonitor)
classes20() {
  local -a names
  [ -s "$1/classes.txt" ] || return 1
  mapfile -t names <"$1/classes.txt"
  [ "${#names[@]}" -le 20 ] || return 1
  names+=("${VOC_NAMES[@]:0:$((20 - ${#names[@]}))}")
  (IFS=,; printf '[%s]' "${names[*]}")
}

# --- 1. versions, the GPU -------------------------------------------------------------------------
DEMO_DATA=$WORK/data/synth
BENCH_DATA=$WORK/data/bench500
EVAL_DATA=$WORK/data/eval500
mkdir -p "$WORK/data"
# The three datasets, generated meanwhile (demo.sh's and bench.sh's recipes; the eval set: VOC2007
# test's image count, 500-px images, 1-4 objects each, 10 shape classes).
("$YOLO2" synth --out "$DEMO_DATA" "${SYNTH_DEMO[@]}" --size 128 --min-object 32 --max-objects 3 --clutter 0 --seed 1 \
  >"$R/logs/synth-demo.log" 2>&1; echo $? >"$WORK/data/demo.rc") &
SYNTH1=$!
("$YOLO2" synth --out "$BENCH_DATA" "${SYNTH_BENCH[@]}" --test 0 --size 500 --seed 2 \
  >"$R/logs/synth-bench.log" 2>&1; echo $? >"$WORK/data/bench.rc") &
SYNTH2=$!
("$YOLO2" synth --out "$EVAL_DATA" --train 1 "${SYNTH_EVAL[@]}" --classes 10 --max-objects 4 --seed 3 \
  >"$R/logs/synth-eval.log" 2>&1; echo $? >"$WORK/data/eval.rc") &
SYNTH3=$!

step version 60 "$YOLO2" version --json && cp "$R/logs/version.log" "$R/version.json"
"$YOLO2" version | sed 's/^/    /'
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv,noheader >"$R/gpu.csv" 2>&1
  say "nvidia-smi: $(cat "$R/gpu.csv")"
  nvidia-smi >"$R/logs/nvidia-smi.log" 2>&1
fi
"$PY" -c 'import torch, json; c = torch.cuda.is_available(); print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "gpu": torch.cuda.get_device_name() if c else None, "available": c}))' \
  >"$R/torch.json" 2>"$R/logs/torch-probe.log"
say "torch sees: $(cat "$R/torch.json")"
[ "$DRY" = 1 ] || grep -q '"available": true' "$R/torch.json" ||
  say "WARNING: torch sees no GPU: the Cuda tests will skip and the CUDA runs fail (see logs/torch-probe.log)"
report

# --- 2. the GPU tests -----------------------------------------------------------------------------
step tests 240 "$TESTS" --gtest_filter="$TEST_FILTER" --gtest_output=xml:"$R/tests.xml"
grep -E '^\[ *(PASSED|FAILED|SKIPPED) *\]|^\[==========\]' "$R/logs/tests.log" | sed 's/^/    /'
report

# --- 3. yolo2 bench on the device against the PyTorch reference, per precision ---------------------
# yolo2 bench's train_iteration is the ratio's yolo2 figure; the two run back to back per precision.
for p in $PRECISIONS; do
  step "bench-$p" 60 "$YOLO2" bench --config configs/voc_ce.yaml --no-loader --no-opencv --json "$R/bench-$p.json" \
    --set runtime.device="$DEVICE" --set runtime.precision="$p" --set runtime.channels_last=true \
    --set train.subdivisions=1 "${BENCH_SET[@]}"
  report
  step "torch-$p" 60 env PYTHONUNBUFFERED=1 "$PY" scripts/torch_reference_bench.py "${REF_ARGS[@]}" --precision "$p" &&
    grep '^{' "$R/logs/torch-$p.log" | tail -1 >"$R/torch-$p.json"
  report
done

# --- 4. evaluation speed: a yolov2-voc checkpoint, then yolo2 eval on the generated test set -----
wait "$SYNTH2"
say "bench data: $(cat "$WORK/data/bench.rc" 2>/dev/null) (exit status of yolo2 synth; log logs/synth-bench.log)"
wait "$SYNTH3"
say "eval data: $(cat "$WORK/data/eval.rc" 2>/dev/null) (exit status of yolo2 synth; log logs/synth-eval.log)"
CLASSES=$(classes20 "$EVAL_DATA") || CLASSES=$(classes20 "$BENCH_DATA") || CLASSES=
fact eval_classes "$CLASSES"
fact ckpt_iters 1
CLASS_SET=()
[ -n "$CLASSES" ] && CLASS_SET=(--set "data.classes=$CLASSES")
# One iteration of the full network on the 500-px set: all the checkpoint is for (its config holds
# the 20 classes, 416 px, width 1).
step eval-ckpt 60 "$YOLO2" train --config configs/voc_ce.yaml --output "$WORK/runs/eval-ckpt" --no-eval \
  --set "data.train=[{root: $BENCH_DATA, split: trainval}]" --set "data.test=[{root: $BENCH_DATA, split: trainval}]" \
  "${CLASS_SET[@]}" --set data.skip_unknown_classes=true --set 'train.init_weights=""' --set train.subdivisions=1 \
  --set 'data.multiscale_sizes=[]' --set train.max_batches=1 --set train.checkpoint_every=1000000 \
  --set data.workers="$WORKERS" --set runtime.device="$DEVICE" "${CKPT_SET[@]}"
if [ -f "$WORK/runs/eval-ckpt/last.ckpt" ]; then
  sampler_start eval
  step eval 90 "$YOLO2" eval --checkpoint "$WORK/runs/eval-ckpt/last.ckpt" --data "$EVAL_DATA" --split test \
    --metric voc07 --json "$R/eval-map.json" --set runtime.device="$DEVICE" --set data.workers="$WORKERS"
  sampler_stop
  grep -E 'eval: [0-9]+ images in' "$R/logs/eval.log" | sed 's/^/    /'
fi
rm -rf "$WORK/runs/eval-ckpt" # the full network's checkpoint: 400 MB
report

# --- 5. a short training run on generated data, and its mAP ---------------------------------------
wait "$SYNTH1"
say "demo data: $(cat "$WORK/data/demo.rc" 2>/dev/null) (exit status of yolo2 synth; log logs/synth-demo.log)"
sampler_start demo
step demo 240 "$YOLO2" train --config configs/synth_focal.yaml --output "$WORK/runs/demo" \
  --set "data.train=[{root: $DEMO_DATA, split: trainval}]" --set "data.test=[{root: $DEMO_DATA, split: test}]" \
  --set train.max_batches="$DEMO_ITERS" --set data.workers="$WORKERS" --set runtime.device="$DEVICE" "${DEMO_SET[@]}"
sampler_stop
cp "$WORK/runs/demo/metrics.csv" "$R/demo.metrics.csv" 2>/dev/null
cp "$WORK/runs/demo/eval.csv" "$R/demo.eval.csv" 2>/dev/null
[ -f "$WORK/runs/demo/best.ckpt" ] &&
  step demo-eval 60 "$YOLO2" eval --checkpoint "$WORK/runs/demo/best.ckpt" --metric voc07 --json "$R/demo-map.json" \
    --output "$WORK/runs/demo/eval"
report

# --- 6. secondary: the loader's rate, then yolo2 train end to end per precision -------------------
# The loader on this host's CPU (yolo2 bench measures it there on any device; width 0.25 keeps the
# rest of that bench run short), then the end-to-end training runs, as far as the budget goes.
step loader 60 "$YOLO2" bench --config configs/voc_ce.yaml --no-opencv --no-train --json "$R/loader.json" \
  --set runtime.device=cpu --set model.width=0.25 --set "data.train=[{root: $BENCH_DATA, split: trainval}]" \
  --set data.skip_unknown_classes=true --set train.subdivisions=1 --set data.workers="$WORKERS" "${LOADER_SET[@]}"
report
for p in $PRECISIONS; do
  sampler_start "train-$p"
  step "train-$p" 90 "$YOLO2" train --config configs/voc_ce.yaml --output "$WORK/runs/tp-$p" --no-eval \
    --set "data.train=[{root: $BENCH_DATA, split: trainval}]" --set "data.test=[{root: $BENCH_DATA, split: trainval}]" \
    "${CLASS_SET[@]}" --set data.skip_unknown_classes=true --set 'train.init_weights=""' --set train.subdivisions=1 \
    --set 'data.multiscale_sizes=[]' --set train.max_batches="$TP_ITERS" --set train.checkpoint_every=1000000 \
    --set train.log_every=10 --set data.workers="$WORKERS" --set runtime.device="$DEVICE" --set runtime.precision="$p" \
    "${TP_SET[@]}"
  sampler_stop
  cp "$WORK/runs/tp-$p/metrics.csv" "$R/train-$p.metrics.csv" 2>/dev/null
  cp "$WORK/runs/tp-$p/config.yaml" "$R/train-$p.config.yaml" 2>/dev/null
  rm -rf "$WORK/runs/tp-$p" # checkpoints of the full network: 400 MB each
  report
done

# --- 6b. the rest of the suite on the GPU machine (CPU tests pin runtime.device: cpu, distributed ones
# use Gloo on the CPU; they must hold where a GPU is visible too), as far as the budget goes -----------
step suite 240 "$TESTS" --gtest_filter="-Cuda*" --gtest_output=xml:"$R/suite.xml"
grep -E '^\[ *(FAILED|SKIPPED) *\]|^\[==========\]|^\[  PASSED  \]' "$R/logs/suite.log" | sed 's/^/    /'
report

# --- 7. the report ---------------------------------------------------------------------------------
report
say "done in $((SECONDS - T0)) s: $OUT/performance-gpu.md, $OUT/gpu-check.log, $OUT/gpu-check-logs.tar.gz"
echo "----- $OUT/performance-gpu.md -----"
cat "$OUT/performance-gpu.md"
exit 0
