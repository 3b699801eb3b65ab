#!/usr/bin/env python3
"""ctest ExperimentReport: scripts/experiment_report.py --pretrained on run folders made up here, whose
final mAPs are known, against an independent computation of the paired differences and their t-based
95 % intervals (the t quantile found by integrating Student's density, not taken from a table), and the
verdict sentences those intervals must give. Standard library only."""
import functools
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ["square", "circle", "diamond", "hexagon"]
COUNTS = {"square": 9, "circle": 6, "diamond": 1, "hexagon": 2}  # rare (3 least frequent): diamond, hexagon, circle


@functools.lru_cache(maxsize=None)
def t_quantile_975(df):
    """The 0.975 quantile of Student's t with df degrees of freedom: bisection on the CDF, itself
    Simpson's rule over the density."""
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))

    def cdf(x, n=20000):
        h = x / n
        s = sum((1 if i in (0, n) else 4 if i % 2 else 2) * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2)
                for i in range(n + 1))
        return 0.5 + c * s * h / 3

    lo, hi = 0.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < 0.975 else (lo, mid)
    return (lo + hi) / 2


def interval(d):
    n = len(d)
    m = sum(d) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return m, m - half, m + half


def write_data(data):
    os.makedirs(os.path.join(data, "ImageSets", "Main"))
    os.makedirs(os.path.join(data, "Annotations"))
    with open(os.path.join(data, "classes.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    ids = []
    for c, n in COUNTS.items():
        for i in range(n):
            ids.append(f"{c}{i}")
            with open(os.path.join(data, "Annotations", f"{c}{i}.xml"), "w") as f:
                f.write(f"<annotation><object><name>{c}</name></object></annotation>")
    with open(os.path.join(data, "ImageSets", "Main", "trainval.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    with open(os.path.join(data, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("\n".join(ids[:3]) + "\n")


def write_run(run, aps, done=True):
    """A finished run: eval.csv (two evaluations; the report takes the last), time, config.yaml."""
    os.makedirs(run)
    header = "iteration,map," + ",".join("ap_" + c for c in CLASSES)
    final = sum(aps.values()) / len(aps)
    with open(os.path.join(run, "eval.csv"), "w") as f:
        f.write(header + "\n")
        f.write("100,0.1," + ",".join("0.1" for _ in CLASSES) + "\n")
        f.write(f"200,{final!r}," + ",".join(repr(aps[c]) for c in CLASSES) + "\n")
    with open(os.path.join(run, "time"), "w") as f:
        f.write("0 60 2\n")
    with open(os.path.join(run, "config.yaml"), "w") as f:
        f.write("data:\n  input_size: 160\n")
    if done:
        open(os.path.join(run, "done"), "w").close()


def pre_registered_word(lo, hi, lead=0.0168):
    """The decision of docs/experiments.md's pre-registration, written out here from its text."""
    if lo > 0:
        return "Confirmed"
    if hi < lead:
        return "Refuted"
    return "Undecided"


def check_confirm(tmp, data, check):
    """--study confirm on records of seeds 1-15: the block between the markers (and nothing else) is
    rewritten; its pre-registered interval over seeds 6-15 and its decision match the independent
    computation; the reruns of seeds 1-5 are compared with the table's per-run mAPs."""
    outcomes = {}
    for case, shift, noise in (("up", 0.02, 0.004), ("flat", 0.008, 0.06), ("down", -0.01, 0.004)):
        rng = random.Random(11)
        records = os.path.join(tmp, f"records_{case}")
        rare_ap, final = {}, {}
        for seed in range(1, 16):
            base = {c: rng.uniform(0.6, 0.8) for c in CLASSES}
            for name, sh in (("ce", 0.0), ("soft_gamma_linear", shift)):
                aps = {c: base[c] + sh + rng.uniform(-noise, noise) for c in CLASSES}
                write_run(os.path.join(records, name, f"seed{seed}"), aps)
                rare_ap[name, seed] = (aps["diamond"] + aps["hexagon"] + aps["circle"]) / 3
                final[name, seed] = sum(aps.values()) / len(aps)
        # The table above the follow-up: seed 1 of each setting as the rerun gives it, seed 2 not.
        per_run = "; ".join(f"{n}: " + ", ".join(f"{final[n, k] + (0.01 if k == 2 else 0):.4f}" for k in range(1, 6))
                            for n in ("ce", "soft_gamma_linear"))
        md = os.path.join(tmp, f"confirm_{case}.md")
        before = (f"# Report\n\nPer-run mAP: {per_run}.\n\n<!-- The part below is not written by REGIME=pretrained "
                  "scripts/experiment.sh: kept -->\n\n## Study 1\n\n")
        after = "\n\n## Study 2\n\n<!-- begin study longtail -->\nx\n<!-- end study longtail -->\n"
        with open(md, "w") as f:
            f.write(before + "<!-- begin study confirm -->\nold\n<!-- end study confirm -->" + after)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "experiment_report.py"), "--study", "confirm",
                        records, "configs/x.yaml", data, "--seed 1", "-", md], check=True)
        text = open(md).read()
        check(text.startswith(before + "<!-- begin study confirm -->\n") and text.endswith("<!-- end study confirm -->" + after),
              f"confirm ({case}): the text outside the block changed")
        m, lo, hi = interval([rare_ap["soft_gamma_linear", s] - rare_ap["ce", s] for s in range(6, 16)])
        word = pre_registered_word(lo, hi)
        outcomes[case] = word
        line = next((l for l in text.splitlines() if l.startswith("Rare-class AP, linear soft gamma minus")), "")
        nums = [float(x) for x in re.findall(r"[+-]\d+\.\d{4}", line)]
        check("over 10 paired seeds" in line and len(nums) >= 3 and
              all(abs(a - b) < 6e-5 for a, b in zip(nums[:3], (m, lo, hi))),
              f"confirm ({case}): {line!r}, expected {m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
        check(f"**{word}**" in line, f"confirm ({case}): interval [{lo:.4f}, {hi:.4f}] should read {word}: {line!r}")
        m15, lo15, hi15 = interval([rare_ap["soft_gamma_linear", s] - rare_ap["ce", s] for s in range(1, 16)])
        all15 = next((l for l in text.splitlines() if l.startswith("- All seeds (1-15")), "")
        check(f"over 15 paired seeds, 95 % interval [{lo15:+.4f}, {hi15:+.4f}]" in all15,
              f"confirm ({case}): all 15 seeds {all15!r}, expected [{lo15:+.4f}, {hi15:+.4f}] (t with 14 df)")
        m5, lo5, hi5 = interval([rare_ap["soft_gamma_linear", s] - rare_ap["ce", s] for s in range(1, 6)])
        alone = next((l for l in text.splitlines() if l.startswith("- Seeds 1-5 alone")), "")
        check(f"over 5 paired seeds, 95 % interval [{lo5:+.4f}, {hi5:+.4f}]" in alone,
              f"confirm ({case}): seeds 1-5 alone {alone!r}, expected [{lo5:+.4f}, {hi5:+.4f}] (t with 4 df)")
        reruns = next((l for l in text.splitlines() if l.startswith("- Reruns of seeds 1-5")), "")
        seed1 = f"{final['ce', 1]:.4f} / {final['soft_gamma_linear', 1]:.4f}"
        seed2 = (f"{final['ce', 2]:.4f} / {final['soft_gamma_linear', 2]:.4f} (above: {final['ce', 2] + 0.01:.4f} / "
                 f"{final['soft_gamma_linear', 2] + 0.01:.4f})")
        check(f"seed 1 {seed1} (above: {seed1})" in reruns and f"seed 2 {seed2}" in reruns,
              f"confirm ({case}): the reruns' line {reruns!r} should give seed 1 as the table and seed 2 0.01 apart")
        check("Reproduced to 4 decimals: 4 of 5 (" in reruns and "earlier session" in reruns,
              f"confirm ({case}): seed 2 differs from the table by 0.01, the others reproduce: {reruns!r}")
    check(outcomes == {"up": "Confirmed", "flat": "Undecided", "down": "Refuted"},
          f"the three made-up studies should give confirmed / undecided / refuted, got {outcomes}")
    # With 7 new seeds the interval is interim: no decision is read.
    records = os.path.join(tmp, "records_up")
    for k in (13, 14, 15):
        os.remove(os.path.join(records, "ce", f"seed{k}", "done"))
    md = os.path.join(tmp, "confirm_up.md")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "experiment_report.py"), "--study", "confirm",
                    records, "configs/x.yaml", data, "--seed 1", "-", md], check=True)
    text = open(md).read()
    check("Interim, not the decision (7 of 10 pairs" in text and "**Confirmed**" not in text,
          "with 7 of 10 new pairs the report must not decide")


def check_longtail(tmp, data, check):
    """--study longtail: the 4 pre-registered intervals (focal gamma 2 and soft gamma against CE, mAP and
    rare-class AP) against the independent computation, and the family's chance figure."""
    rng = random.Random(5)
    records = os.path.join(tmp, "records_longtail")
    rare_ap, final = {}, {}
    for seed in range(1, 6):
        base = {c: rng.uniform(0.5, 0.8) for c in CLASSES}
        for name, sh in (("ce", 0.0), ("focal_g2", 0.03), ("soft_gamma_linear", 0.0)):
            aps = {c: base[c] + sh + rng.uniform(-0.01, 0.01) for c in CLASSES}
            write_run(os.path.join(records, name, f"seed{seed}"), aps)
            rare_ap[name, seed] = (aps["diamond"] + aps["hexagon"] + aps["circle"]) / 3
            final[name, seed] = sum(aps.values()) / len(aps)
    md = os.path.join(tmp, "longtail.md")
    with open(md, "w") as f:
        f.write("<!-- begin study longtail -->\n<!-- end study longtail -->\n")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "experiment_report.py"), "--study", "longtail",
                    records, "configs/x.yaml", data, "--seed 1", "-", md], check=True)
    text = open(md).read()
    for name in ("focal_g2", "soft_gamma_linear"):
        for measure, values in (("mAP", final), ("rare-class AP", rare_ap)):
            m, lo, hi = interval([values[name, s] - values["ce", s] for s in range(1, 6)])
            row = next((l for l in text.splitlines() if f"| {measure} | 5 |" in l and
                        l.startswith("| softmax focal, gamma 2" if name == "focal_g2" else "| soft gamma: linear")), "")
            nums = [float(x) for x in re.findall(r"[+-]\d+\.\d{4}", row)]
            check(len(nums) == 3 and all(abs(a - b) < 6e-5 for a, b in zip(nums, (m, lo, hi))),
                  f"longtail {name} {measure}: {row!r}, expected {m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    check("**Verdict**" in text and f"4 intervals are read" in text and "1 - 0.95^4 = 19 %" in text,
          "longtail: the verdict does not count its 4 intervals")


def main():
    rng = random.Random(7)
    tmp = tempfile.mkdtemp(prefix="yolo2_report_test_")
    data, out = os.path.join(tmp, "data"), os.path.join(tmp, "runs")
    write_data(data)
    # Each setting's AP per class = CE's + a shift + noise, so the paired difference is known exactly.
    shift = {"ce": 0.0, "focal_g1": 0.0, "focal_g2": 0.03, "focal_g3": -0.03, "soft_gamma_linear": 0.006,
             "soft_gamma_step": 0.0}
    seeds = [1, 2, 3, 4, 5]
    final, rare_ap = {}, {}
    for seed in seeds:
        base = {c: rng.uniform(0.6, 0.8) for c in CLASSES}
        for name, sh in shift.items():
            if name == "soft_gamma_step" and seed > 1:
                continue  # one seed only: "too few pairs"
            noise = 0.02 if name in ("focal_g1", "soft_gamma_linear") else 0.002
            aps = {c: base[c] + sh + rng.uniform(-noise, noise) for c in CLASSES}
            write_run(os.path.join(out, name, f"seed{seed}"), aps)
            final[name, seed] = sum(aps.values()) / len(aps)
            rare_ap[name, seed] = (aps["diamond"] + aps["hexagon"] + aps["circle"]) / 3
    write_run(os.path.join(out, "focal_g2", "seed6"), {c: 0.0 for c in CLASSES}, done=False)  # unfinished: ignored
    commands = os.path.join(out, "commands.txt")
    with open(commands, "w") as f:
        f.write("yolo2 train --config x.yaml\n")
    md = os.path.join(tmp, "docs", "experiments.md")
    os.makedirs(os.path.dirname(md))
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "experiment_report.py"), "--pretrained", out,
                    "configs/x.yaml", data, "--seed 1", commands, md], check=True)
    text = open(md).read()
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    def row_of(label):
        for line in text.splitlines():
            if line.startswith(f"| {label} | 5 |") and "interval" not in line and "[" in line:
                return line
        return None

    labels = {"focal_g1": "softmax focal, gamma 1", "focal_g2": "softmax focal, gamma 2 (the seed's setting)",
              "focal_g3": "softmax focal, gamma 3", "soft_gamma_linear": "soft gamma: linear 0 -> 2 over training"}
    rare_differs = {}  # label -> whether its rare-class interval excludes 0
    for name, label in labels.items():
        row = row_of(label)
        check(row is not None, f"no paired row with 5 pairs for {name}")
        if row is None:
            continue
        nums = [float(x) for x in re.findall(r"[+-]\d+\.\d{4}", row)]
        m, lo, hi = interval([final[name, s] - final["ce", s] for s in seeds])
        mr, lor, hir = interval([rare_ap[name, s] - rare_ap["ce", s] for s in seeds])
        expect = [m, lo, hi, mr, lor, hir]
        rare_differs[label] = lor > 0 or hir < 0
        check(len(nums) == 6 and all(abs(a - b) < 6e-5 for a, b in zip(nums, expect)),
              f"{name}: the table gives {nums}, the independent computation {[round(x, 4) for x in expect]}")
    check("| soft gamma: step 0 -> 1 -> 2 at 1/3 and 2/3 | 1 |" in text and "too few pairs" in text,
          "the setting with one seed is not reported as too few pairs")
    verdict = text[text.find("## Verdict"):]
    check("## Verdict" in text, "no verdict section")
    g2 = next((l for l in verdict.splitlines() if l.startswith("- softmax focal, gamma 2")), "")
    g3 = next((l for l in verdict.splitlines() if l.startswith("- softmax focal, gamma 3")), "")
    check("A gain of the seed's size holds here" in g2, f"focal gamma 2 (+0.03, tight): {g2!r}")
    check("does not hold here" in g3 and "worse than cross-entropy" in g3, f"focal gamma 3 (-0.03): {g3!r}")
    # Gamma 1 (noise of +-0.02 around CE): its sentence follows from its interval and the seed's +0.0058.
    g1 = next((l for l in verdict.splitlines() if l.startswith("- softmax focal, gamma 1")), "")
    m, lo, hi = interval([final["focal_g1", s] - final["ce", s] for s in seeds])
    want = "does not hold here" if hi < 0.0058 else "holds here" if lo > 0 else "Undecided"
    check(want in g1, f"focal gamma 1, interval [{lo:.4f}, {hi:.4f}]: expected {want!r} in {g1!r}")
    if want == "Undecided":  # and it says which of 0 and the seed's gain the mean is nearer
        nearer = "nearer 0" if abs(m) <= abs(m - 0.0058) else "nearer the seed's gain"
        check(nearer in g1, f"focal gamma 1, mean {m:+.4f}: expected {nearer!r} in {g1!r}")
    # The soft-gamma lines: linear against CE and against constant gamma 2 (which it trails by about 0.024).
    lin = [l for l in verdict.splitlines() if l.startswith("- soft gamma: linear")]
    check(len(lin) == 2 and "against constant gamma 2" in lin[1] and "**it hurts**" in lin[1],
          f"soft gamma linear against gamma 2: {lin!r}")
    check(any("- soft gamma: step" in l and "no interval yet" in l for l in verdict.splitlines()),
          "soft gamma step (one seed) should have no interval")
    # The multiple-comparison note counts the mAP intervals read: gamma 1, 2, 3 against CE and linear soft
    # gamma against CE and gamma 2 (step, with one seed, has none).
    check("5 comparisons of mAP" in verdict and f"1 - 0.95^5 = {100 * (1 - 0.95 ** 5):.0f} %" in verdict,
          "the verdict does not count its 5 mAP intervals")
    # The rare-class paragraph names exactly the settings whose rare-class interval excludes 0.
    rare = next((l for l in verdict.splitlines() if l.startswith("The rare classes")), "")
    named = {label: f"{label}: " in rare for label in rare_differs}
    check(rare and named == rare_differs, f"rare-class verdict {rare!r}: expected {rare_differs}")
    check("nan" not in text, "a one-run standard deviation is printed as nan")
    check_confirm(tmp, data, check)
    check_longtail(tmp, data, check)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures) + f"\n(report: {md})")
        return 1
    shutil.rmtree(tmp)
    print("ok: paired intervals and verdicts match the independent computation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
