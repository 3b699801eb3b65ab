#!/usr/bin/env bash
# The GPU checks of issue 14, in one go on a machine with an NVIDIA GPU and PyTorch's torch wheel
# (torch==2.11.0+cu130, as build-pypi/ was built against) but none of yolo2's other libraries: runs
# the package that scripts/gpu-pack.sh made on the build machine (gpu-pkg/yolo2-gpu-pkg.tar.xz).
#
#   scripts/gpu-check.sh              # on the GPU machine; writes to $OUT (gpu-pkg/out when unset)
#   scripts/gpu-check.sh --dry-run    # anywhere (or GPU_CHECK_DRY_RUN=1): the same steps on the CPU,
#                                     # at toy sizes, into gpu-pkg/dry-run-out
#
# Steps (each under `timeout`; a step's limit is cut to what is left of GPU_CHECK_BUDGET, 510 s by
# default, so that the whole run ends inside a 10-minute command; expected times on an H200 in []):
#   0. unpack the package; find torch (python3 -c 'import torch') and the nvidia-* wheels' lib dirs;
#      check that every library resolves (ldd) and that the base system is new enough    60 s  [5 s]
#   1. yolo2 version, nvidia-smi, torch's own view of the GPU                             60 s  [10 s]
#      (in the background meanwhile: yolo2 synth of the two generated datasets)
#   2. yolo2_tests --gtest_filter='Cuda*' (tests/test_cuda.cpp; CudaDevice.* included)    240 s [60-120 s]
#   3. training throughput, yolov2-voc (width 1, 20 classes) at 416, batch 64 in one pass, no
#      multi-scale, per precision fp32 / tf32 / bf16 / fp16: `yolo2 train` for TP_ITERS (30)
#      iterations on 300 generated 500-px JPEGs through the augmenting loader            4 x 90 s [4 x 25 s]
#   4. the same network in plain PyTorch, scripts/torch_reference_bench.py, per precision   4 x 90 s [4 x 20 s]
#   5. a short CUDA training run on generated data: configs/synth_focal.yaml (the from-scratch demo
#      detector, 2,400 iterations) on data/synth's recipe, then its VOC07 mAP             240 s [60-120 s]
#   6. yolo2 bench on this host's CPU (configs/voc_ce.yaml: reference conv, oneDNN forward, VOC
#      scoring, and the loader rate that step 3 needs to tell loader-bound from GPU-bound;
#      yolo2 bench measures on the CPU only: it has no device setting)                    120 s [30 s]
#   7. $OUT/performance-gpu.md (a section for docs/performance.md: device, driver, versions, the
#      figures, yolo2 / PyTorch ratios), $OUT/gpu-check.log, $OUT/gpu-check-logs.tar.gz (every
#      step's log, metrics.csv files, JSON)
# The markdown is rewritten after every step, so a run cut short still returns what it measured.
#
# Env: GPU_CHECK_PACKAGE (gpu-pkg/yolo2-gpu-pkg.tar.xz), GPU_CHECK_BUDGET (510), PYTHON (python3),
# TP_ITERS (30), TP_WARMUP (10: iterations left out of the median), DEMO_ITERS (2400), GPU_CHECK_KEEP
# (1: keep the work dir in /tmp).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$PWD

DRY=${GPU_CHECK_DRY_RUN:-0}
for a in "$@"; do
  case "$a" in
    --dry-run) DRY=1 ;;
    -h | --help) sed -n '2,40p' "$0"; exit 0 ;;
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
R=$WORK/results # what the report reads: steps.tsv, *.json, *.csv, logs/
mkdir -p "$R/logs"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
# On exit, end what is still running in the background (the samplers, the synth runs): by PID, no
# bare `wait` (it would wait for the tee above, which waits for this shell's output to end).
# The work dir (unpacked package, data, runs) goes too unless GPU_CHECK_KEEP=1.
trap 'for j in $(jobs -p); do kill "$j" 2>/dev/null; done; [ "${GPU_CHECK_KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT
T0=$SECONDS
say() { printf '[gpu-check %4ds] %s\n' $((SECONDS - T0)) "$*"; }
say "mode: $([ "$DRY" = 1 ] && echo "DRY RUN (CPU, toy sizes)" || echo GPU); budget ${BUDGET} s; work dir $WORK; out $OUT"
echo "mode	$([ "$DRY" = 1 ] && echo dry-run || echo gpu)" >"$R/facts.tsv"
fact() { printf '%s\t%s\n' "$1" "$2" >>"$R/facts.tsv"; }

# step NAME LIMIT_S CMD...: run with its output in logs/NAME.log, the limit cut to the budget left;
# records NAME, exit status (124: timed out), seconds in steps.tsv; prints the log's last lines.
step() {
  local name=$1 limit=$2 left rc t
  shift 2
  left=$((BUDGET - (SECONDS - T0) - RESERVE))
  if [ "$left" -lt 10 ]; then
    say "SKIP $name: the budget is spent"
    printf '%s\tskipped\t0\n' "$name" >>"$R/steps.tsv"
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "START $name (limit ${limit} s): $*"
  t=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$R/logs/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" $((SECONDS - t)) >>"$R/steps.tsv"
  tail -n 6 "$R/logs/$name.log" | sed 's/^/    | /'
  say "END $name: exit $rc$([ $rc = 124 ] && echo ' (TIMED OUT)') after $((SECONDS - t)) s"
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
[ -z "$OUTSIDE" ] || say "WARNING: libraries from outside the package, the wheel and glibc/libstdc++: $(echo $OUTSIDE)"
fact libraries_outside "$(echo $OUTSIDE)"
say "libraries: all resolve ($(grep -c "=> $PKG/lib/" "$R/logs/libraries.log") package, $(grep -Ec "=> ($TORCH_DIR/lib|$SITE/nvidia)/" "$R/logs/libraries.log") wheel lines in ldd)"

# --- settings: the GPU run, or the dry run's toy sizes on the CPU ---------------------------------
NPROC=$(nproc)
WORKERS=$((NPROC > 4 ? NPROC - 2 : 2))
if [ "$DRY" = 1 ]; then
  DEVICE=cpu
  PRECISIONS="fp32 bf16" # tf32 and fp16 need CUDA (yolo2 and the reference both refuse them on the CPU)
  TEST_FILTER='Config*:Nms*:Cuda*'
  TP_ITERS=${TP_ITERS:-4} TP_WARMUP=${TP_WARMUP:-1} DEMO_ITERS=${DEMO_ITERS:-4}
  TP_SET=(--set model.width=0.25 --set data.input_size=128 --set train.batch=4)
  REF_ARGS=(--device cpu --batch 4 --size 128 --width 0.25 --iters 2 --warmup 1)
  DEMO_SET=(--set train.batch=4 --set 'data.multiscale_sizes=[96]' --set data.multiscale_final=0)
  BENCH_SET=(--set model.width=0.25 --set data.input_size=128 --set train.batch=4 --repeats 1 --batches 2)
  SYNTH_DEMO=(--train 24 --test 8) SYNTH_BENCH=(--train 12)
else
  DEVICE=cuda
  PRECISIONS="fp32 tf32 bf16 fp16"
  TEST_FILTER='Cuda*'
  TP_ITERS=${TP_ITERS:-30} TP_WARMUP=${TP_WARMUP:-10} DEMO_ITERS=${DEMO_ITERS:-2400}
  TP_SET=(--set train.batch=64)
  REF_ARGS=(--device cuda --batch 64 --size 416 --iters 20 --warmup 5)
  DEMO_SET=()
  BENCH_SET=(--set train.batch=64 --repeats 3 --batches 10)
  SYNTH_DEMO=(--train 2000 --test 300) SYNTH_BENCH=(--train 300)
fi
fact device "$DEVICE"
fact workers "$WORKERS"
fact tp_iters "$TP_ITERS"
fact tp_warmup "$TP_WARMUP"
fact cpus "$NPROC"
fact test_filter "$TEST_FILTER"
fact tp_set "train.subdivisions=1 $(printf '%s ' "${TP_SET[@]}" | sed 's/--set //g; s/ $//')"
fact ref_args "${REF_ARGS[*]}"
fact synth_demo "${SYNTH_DEMO[*]}"

# The report: performance-gpu.md from the files in $R (python3: argv = results dir, output, seconds).
IFS= read -r -d '' REPORT_PY <<'PYEOF' || true
import csv, glob, json, os, re, statistics, sys, xml.etree.ElementTree as ET

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
dry = facts.get("mode") == "dry-run"
version = load_json("version.json") or {}
torchj = load_json("torch.json") or {}
gpu = [x.strip() for x in read("gpu.csv").split(",")] if read("gpu.csv") else []
manifest = read("MANIFEST").splitlines()
commit = next((l.split()[1] for l in manifest if l.startswith("commit ")), "?")
precisions = [p for p in ("fp32", "tf32", "bf16", "fp16") if p in status or "train-" + p in status or "torch-" + p in status]

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
    cases = root.iter("testcase")
    rows, n = [], {"passed": 0, "failed": 0, "skipped": 0}
    for c in cases:
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

# Throughput
bench = load_json("bench.json") or {}
bench_results = {r.get("id"): r for r in bench.get("results", [])} if isinstance(bench, dict) else {}
loader = bench_results.get("loader", {}).get("value")
L.append("### Training throughput: yolov2-voc (width 1, 20 classes) at 416, batch 64" if not dry else
         "### Training throughput (dry run: width 0.25, 128 px, batch 4, on the CPU)")
L.append("")
L.append("| precision | yolo2 train (images/s) | PyTorch reference (images/s) | yolo2 / PyTorch | yolo2 GPU busy | yolo2 peak GPU memory (MiB) | PyTorch peak GPU memory (MiB) |")
L.append("|---|---|---|---|---|---|---|")
for p in precisions:
    y, n = train_rate(p)
    t = load_json(f"torch-{p}.json") or {}
    tr = t.get("images_per_s")
    util, mem = sampled("train-" + p)
    ratio = f"{y / tr:.2f}" if y and tr else "-"
    ys = num(y) if y else step_status("train-" + p)
    ts = num(tr) if tr else step_status("torch-" + p)
    L.append(f"| {p} | {ys} | {ts} | {ratio} | {num(util, 0) + ' %' if util is not None else '-'} | "
             f"{num(mem, 0)} | {num(t.get('peak_gpu_memory_mib'), 0)} |")
L.append("")
L.append(f"yolo2: `yolo2 train --config configs/voc_ce.yaml` with `{facts.get('tp_set', '?')}` (one pass per iteration), "
         f"no multi-scale, `--no-eval`, no initial weights, {facts.get('tp_iters', '?')} iterations; the median of "
         f"metrics.csv's `images_per_s` (batch / wall time of the whole iteration: loader wait, forward, region loss, "
         f"backward, SGD step) after the first {facts.get('tp_warmup', '?')}. Data: generated 500-px JPEGs (bench.sh's "
         f"recipe) through the full augmenting loader with {facts.get('workers', '?')} workers; the shape classes are "
         f"skipped as unknown to VOC's 20 (no objects: the region loss has no positives). "
         f"PyTorch: `scripts/torch_reference_bench.py {facts.get('ref_args', '?')} --precision P` (the same network, "
         f"batch and size; random input, a stand-in loss, `cudnn.benchmark`, channels-last, autocast + GradScaler). "
         f"GPU busy: mean `utilization.gpu` of nvidia-smi samples (200 ms) above 0 during the yolo2 run.")
if loader:
    L.append("")
    L.append(f"The loader alone (`yolo2 bench`, same data and workers, on this host's CPU): **{num(loader)} images/s**; "
             f"a yolo2 figure near it is loader-bound, not GPU-bound.")
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

# Bench
if bench_results:
    L.append("### yolo2 bench on this host's CPU")
    L.append("")
    L.append("`yolo2 bench --config configs/voc_ce.yaml --no-opencv --no-train` (yolo2 bench measures on the CPU only).")
    L.append("")
    L.append("| figure | value | unit | note |")
    L.append("|---|---|---|---|")
    for r in bench.get("results", []):
        L.append(f"| {r.get('label', r.get('id'))} | {num(r.get('value'), 2)} | {r.get('unit', '')} | {r.get('note', '')} |")
    L.append("")

L.append("### Steps")
L.append("")
L.append("| step | status | seconds |")
L.append("|---|---|---|")
for s in steps:
    L.append(f"| {s[0]} | {step_status(s[0])} | {s[2]} |")
L.append("")
open(out, "w").write("\n".join(L) + "\n")
PYEOF

report() { # the markdown, from $R; rerun after every step
  "$PY" - "$R" "$OUT/performance-gpu.md" $((SECONDS - T0)) <<<"$REPORT_PY" || say "WARNING: the report failed"
  tar -C "$R" -czf "$OUT/gpu-check-logs.tar.gz.tmp" . && mv "$OUT/gpu-check-logs.tar.gz.tmp" "$OUT/gpu-check-logs.tar.gz"
}

# --- 1. versions, the GPU -------------------------------------------------------------------------
DEMO_DATA=$WORK/data/synth
BENCH_DATA=$WORK/data/bench500
mkdir -p "$WORK/data"
# The two datasets, generated meanwhile (demo.sh's and bench.sh's recipes).
("$YOLO2" synth --out "$DEMO_DATA" "${SYNTH_DEMO[@]}" --size 128 --min-object 32 --max-objects 3 --clutter 0 --seed 1 \
  >"$R/logs/synth-demo.log" 2>&1; echo $? >"$WORK/data/demo.rc") &
SYNTH1=$!
("$YOLO2" synth --out "$BENCH_DATA" "${SYNTH_BENCH[@]}" --test 0 --size 500 --seed 2 \
  >"$R/logs/synth-bench.log" 2>&1; echo $? >"$WORK/data/bench.rc") &
SYNTH2=$!

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

# GPU sampler: memory used and utilisation every 200 ms while a step runs (GPU mode only).
sampler_start() {
  SAMPLER=
  [ "$DRY" = 1 ] || ! command -v nvidia-smi >/dev/null && return
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 >"$R/gpu-$1.csv" 2>/dev/null &
  SAMPLER=$!
}
sampler_stop() { [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null; SAMPLER=; }

# --- 3. yolo2's training throughput per precision -------------------------------------------------
wait "$SYNTH2"
say "bench data: $(cat "$WORK/data/bench.rc" 2>/dev/null) (exit status of yolo2 synth; log logs/synth-bench.log)"
for p in $PRECISIONS; do
  sampler_start "train-$p"
  step "train-$p" 90 "$YOLO2" train --config configs/voc_ce.yaml --output "$WORK/runs/tp-$p" --no-eval \
    --set "data.train=[{root: $BENCH_DATA, split: trainval}]" --set "data.test=[{root: $BENCH_DATA, split: trainval}]" \
    --set data.skip_unknown_classes=true --set 'train.init_weights=""' --set train.subdivisions=1 \
    --set 'data.multiscale_sizes=[]' --set train.max_batches="$TP_ITERS" --set train.checkpoint_every=1000000 \
    --set train.log_every=10 --set data.workers="$WORKERS" --set runtime.device="$DEVICE" --set runtime.precision="$p" \
    "${TP_SET[@]}"
  sampler_stop
  cp "$WORK/runs/tp-$p/metrics.csv" "$R/train-$p.metrics.csv" 2>/dev/null
  cp "$WORK/runs/tp-$p/config.yaml" "$R/train-$p.config.yaml" 2>/dev/null
  rm -rf "$WORK/runs/tp-$p" # checkpoints of the full network: 400 MB each
  report
done

# --- 4. the PyTorch reference per precision --------------------------------------------------------
for p in $PRECISIONS; do
  step "torch-$p" 90 env PYTHONUNBUFFERED=1 "$PY" scripts/torch_reference_bench.py "${REF_ARGS[@]}" --precision "$p" &&
    grep '^{' "$R/logs/torch-$p.log" | tail -1 >"$R/torch-$p.json"
  report
done

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

# --- 6. yolo2 bench on this host's CPU (and the loader rate) --------------------------------------
step bench 120 "$YOLO2" bench --config configs/voc_ce.yaml --no-opencv --no-train --json "$R/bench.json" \
  --set "data.train=[{root: $BENCH_DATA, split: trainval}]" --set data.skip_unknown_classes=true \
  --set train.subdivisions=1 --set data.workers="$WORKERS" "${BENCH_SET[@]}"

# --- 7. the report ---------------------------------------------------------------------------------
report
say "done in $((SECONDS - T0)) s: $OUT/performance-gpu.md, $OUT/gpu-check.log, $OUT/gpu-check-logs.tar.gz"
echo "----- $OUT/performance-gpu.md -----"
cat "$OUT/performance-gpu.md"
exit 0
