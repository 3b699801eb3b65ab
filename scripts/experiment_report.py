#!/usr/bin/env python3
"""Writes the experiment's report from the runs of scripts/experiment.sh (standard library only).

usage: experiment_report.py [--pretrained | --study NAME] OUT CONFIG DATA SYNTH_ARGS COMMANDS MARKDOWN [EARLIER_OUT ...]

EARLIER_OUT: folders of earlier runs of the script (e.g. at another ITERS), tabulated after the main table.
--pretrained: the runs of REGIME=pretrained (other settings; paired differences to cross-entropy), for
docs/experiments.md; without it, the from-scratch runs for docs/experiments-scratch.md. It rewrites
docs/experiments.md up to the follow-up marker and keeps the rest (the pre-registered studies).
--study confirm|longtail: issue 27's pre-registered studies, from their records (OUT) into the block of
MARKDOWN between "<!-- begin study NAME -->" and "<!-- end study NAME -->"; COMMANDS is unused ("-").
"""
import csv
import glob
import os
import re
import shutil
import statistics
import sys
import xml.etree.ElementTree as ET

STUDY = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--study" else None
PRETRAINED = STUDY is not None or (len(sys.argv) > 1 and sys.argv[1] == "--pretrained")
args = sys.argv[3:] if STUDY else sys.argv[2:] if PRETRAINED else sys.argv[1:]
out, config, data, synth_args, commands_file, md_path = args[0:6]
earlier = args[6:]
NAMES = [
    ("ce", "cross-entropy (darknet's class term)"),
    ("focal_g2", "softmax focal, gamma 2, alpha 1 (the seed's setting)"),
    ("focal_g2_alpha_auto", "softmax focal, gamma 2, alpha auto (inverse class frequency)"),
    ("soft_gamma_0_to_2", "softmax focal, gamma 0 -> 2 linearly over training (soft gamma)"),
    ("sigmoid_focal_g2", "sigmoid focal (torchvision), gamma 2, alpha 0.25"),
]
if PRETRAINED:
    NAMES = [
        ("ce", "cross-entropy (darknet's class term)"),
        ("focal_g1", "softmax focal, gamma 1"),
        ("focal_g2", "softmax focal, gamma 2 (the seed's setting)"),
        ("focal_g3", "softmax focal, gamma 3"),
        ("soft_gamma_linear", "soft gamma: linear 0 -> 2 over training"),
        ("soft_gamma_step", "soft gamma: step 0 -> 1 -> 2 at 1/3 and 2/3"),
    ]
RARE = ":rare"  # seed_maps[name + RARE]: the rare-class AP of each seed
PLOT_DIR = "experiments" if PRETRAINED else "experiments-scratch"  # next to the report


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def object_counts(split_name):
    """Objects per class in one split of DATA."""
    found = {}
    split = os.path.join(data, "ImageSets", "Main", split_name + ".txt")
    for image_id in open(split).read().split():
        root = ET.parse(os.path.join(data, "Annotations", image_id + ".xml")).getroot()
        for obj in root.iter("object"):
            name = obj.findtext("name")
            found[name] = found.get(name, 0) + 1
    return found


# Object counts per class in the training split (long tail): the rare classes are the 3 least frequent.
counts = object_counts("trainval")
classes = [l.strip() for l in open(os.path.join(data, "classes.txt")) if l.strip()]
rare = sorted(classes, key=lambda c: counts.get(c, 0))[:3]

def collect(folder, plots, seeds=None):
    """From one OUT folder: rows (one per setting with finished runs), mean AP per class, the final mAP
    by setting and seed, and the mAP curves (setting -> {iteration: [mAP of each seed]}). seeds: only
    those runs ("seed6", ...), when given."""
    rows, per_class, seed_maps, curves = [], {}, {}, {}
    for name, label in NAMES:
        maps, rares, times, its, at_once, sizes = [], [], [], None, set(), set()
        ap_runs = []
        for run in sorted(glob.glob(os.path.join(folder, name, "seed*"))):
            if not os.path.exists(os.path.join(run, "done")) or (seeds is not None and os.path.basename(run) not in seeds):
                continue
            ev = read_csv(os.path.join(run, "eval.csv"))
            if not ev:
                continue
            last = ev[-1]
            maps.append(float(last["map"]))
            seed_maps.setdefault(name, {})[os.path.basename(run)] = float(last["map"])
            for row in ev:
                curves.setdefault(name, {}).setdefault(int(float(row["iteration"])), []).append(float(row["map"]))
            aps = {c: float(last["ap_" + c]) for c in classes if ("ap_" + c) in last and last["ap_" + c] not in ("", "nan")}
            ap_runs.append(aps)
            rares.append(statistics.mean(aps[c] for c in rare if c in aps))
            seed_maps.setdefault(name + RARE, {})[os.path.basename(run)] = rares[-1]
            # start, end and (since PARALLEL) how many runs shared the cores, 1 thread each when 2.
            fields = open(os.path.join(run, "time")).read().split()
            times.append(float(fields[1]) - float(fields[0]))
            at_once.add(int(fields[2]) if len(fields) > 2 else 1)
            its = last["iteration"]
            # The evaluation's input size: data.input_size of the run's resolved config.
            with open(os.path.join(run, "config.yaml")) as f:
                m = re.search(r"^\s*input_size:\s*(\d+)", f.read(), re.M)
            sizes.add(m.group(1) if m else "?")
        if not maps:
            continue
        sd = statistics.stdev(maps) if len(maps) > 1 else float("nan")
        sd_r = statistics.stdev(rares) if len(rares) > 1 else float("nan")
        rows.append((name, label, len(maps), statistics.mean(maps), sd, statistics.mean(rares), sd_r,
                     (statistics.median(times), min(times), sorted(at_once)), f"{its} (eval at {', '.join(sorted(sizes))} px)",
                     maps))
        per_class[name] = {c: statistics.mean(r[c] for r in ap_runs if c in r) for c in classes}
        if plots:  # plots of the first seed next to the report
            first = sorted(glob.glob(os.path.join(folder, name, "seed*")))[0]
            os.makedirs(os.path.join(os.path.dirname(md_path), PLOT_DIR), exist_ok=True)
            for plot in ("loss.png", "map.png"):
                src = os.path.join(first, plot)
                if os.path.exists(src):
                    shutil.copyfile(src, os.path.join(os.path.dirname(md_path), PLOT_DIR, f"{name}_{plot}"))
    return rows, per_class, seed_maps, curves


def std_text(sd):
    return "-" if sd != sd else f"{sd:.4f}"  # one run: no standard deviation


def results_table(rows):
    # Wall time: the median and the fastest run (a run that shared the cores with other work is slower).
    lines = ["| class term | runs | mAP mean | mAP std | rare-class AP mean | rare std | time per run (median / fastest) | iterations |",
             "|---|---|---|---|---|---|---|---|"]
    for name, label, n, m, sd, r, sdr, t, its, maps in rows:
        shared = "" if t[2] == [1] else " (" + " or ".join(map(str, t[2])) + " runs at a time)"
        lines.append(f"| {label} | {n} | {m:.4f} | {std_text(sd)} | {r:.4f} | {std_text(sdr)} | {t[0]:.0f} s / {t[1]:.0f} s{shared} | {its} |")
    lines.append("")
    lines.append("Per-run mAP: " + "; ".join(f"{name}: " + ", ".join(f"{x:.4f}" for x in maps)
                                          for name, _, _, _, _, _, _, _, _, maps in rows) + ".\n")
    return lines


# Two-sided 95 % t quantiles (the 0.975 quantile of Student's t) by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
       20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
       29: 2.045, 30: 2.042}


def paired(seed_maps, name, base, seeds=None):
    """The paired difference name - base over the seeds both finished (only those in `seeds`, when
    given): (pairs, mean, low, high), the interval t-based at 95 % (None with fewer than 2 pairs)."""
    a, b = seed_maps.get(name, {}), seed_maps.get(base, {})
    both = set(a) & set(b) if seeds is None else set(a) & set(b) & set(seeds)
    d = [a[k] - b[k] for k in sorted(both)]
    if len(d) < 2:
        return len(d), (d[0] if d else float("nan")), None, None
    if len(d) - 1 not in T95:
        sys.exit(f"experiment_report.py: {len(d)} pairs: no t quantile for {len(d) - 1} degrees of freedom")
    m = statistics.mean(d)
    half = T95[len(d) - 1] * statistics.stdev(d) / len(d) ** 0.5
    return len(d), m, m - half, m + half


def sign_of(lo, hi, above, below):
    """What a 95 % interval of a difference shows: above 0, below 0, or neither."""
    return above if lo > 0 else below if hi < 0 else "no difference shown"


def paired_lines(rows, seed_maps):
    """The paired difference of each setting to cross-entropy (mAP and rare-class AP)."""
    lines = ["| class term | pairs | mean difference to CE (mAP) | 95 % interval | verdict | rare-class AP difference | 95 % interval |",
             "|---|---|---|---|---|---|---|"]
    for name, label, *_ in rows:
        if name == "ce":
            continue
        n, m, lo, hi = paired(seed_maps, name, "ce")
        _, mr, lor, hir = paired(seed_maps, name + RARE, "ce" + RARE)
        if lo is None:
            lines.append(f"| {label} | {n} | " + (f"{m:+.4f}" if n else "-") + " | - | too few pairs | " +
                         (f"{mr:+.4f}" if n else "-") + " | - |")
            continue
        verdict = sign_of(lo, hi, "better than CE", "worse than CE")
        lines.append(f"| {label} | {n} | {m:+.4f} | [{lo:+.4f}, {hi:+.4f}] | {verdict} | {mr:+.4f} | [{lor:+.4f}, {hir:+.4f}] |")
    lines.append("")
    return lines


# The seed's VOC2007-test differences to cross-entropy (73.05 mAP), single runs, on the 0-1 scale used
# here: gamma 2 74.08 (its "+1 mAP"), gamma 1 73.63, gamma 3 73.73.
CLAIMS = {"focal_g2": 0.0103, "focal_g1": 0.0058, "focal_g3": 0.0068}


def claim_sentence(label, claim, n, m, lo, hi):
    """One plain sentence: does the paired interval of (setting - CE) support the seed's gain?"""
    head = (f"{label}: {m:+.4f} mAP against cross-entropy over {n} paired seeds, 95 % interval "
            f"[{lo:+.4f}, {hi:+.4f}]; the seed measured {claim:+.4f}")
    if hi < claim:
        why = sign_of(lo, hi, "better than cross-entropy, but by less", "worse than cross-entropy")
        return f"{head}. **The seed's gain does not hold here**: the interval excludes it ({why})."
    if lo > 0:
        return f"{head}. **A gain of the seed's size holds here**: the interval excludes 0 and reaches {claim:+.4f}."
    nearer = "0" if abs(m) <= abs(m - claim) else "the seed's gain"
    return (f"{head}. **Undecided**: the interval contains both 0 and the seed's gain, and the mean difference "
            f"is nearer {nearer}: no gain is shown, nor is one of the seed's size excluded; more seeds would tell.")


def too_few(n, m):
    return (f"{m:+.4f} mAP on its one paired seed; no interval yet" if n == 1 else "no paired seed yet")


def verdict_lines(rows, seed_maps):
    """Plain answers to the issue's two questions, computed from the paired intervals."""
    names = {r[0]: r[1] for r in rows}
    if "ce" not in names:
        return []
    body, read = [], 0  # read: the mAP intervals the statements below rest on
    for name in ("focal_g2", "focal_g1", "focal_g3"):
        if name in names:
            n, m, lo, hi = paired(seed_maps, name, "ce")
            read += lo is not None
            body.append("- " + (claim_sentence(names[name], CLAIMS[name], n, m, lo, hi) if lo is not None else
                                f"{names[name]}: {too_few(n, m)}."))
    body.append("")
    soft = [s for s in ("soft_gamma_linear", "soft_gamma_step") if s in names]
    if soft:
        body.append("Does soft gamma help? Against cross-entropy and against the constant gamma 2 that both "
                    "schedules end at:\n")
        for name in soft:
            for base, base_text in (("ce", "cross-entropy"), ("focal_g2", "constant gamma 2")):
                if base not in names:
                    continue
                n, m, lo, hi = paired(seed_maps, name, base)
                if lo is None:
                    body.append(f"- {names[name]}, against {base_text}: {too_few(n, m)}.")
                    continue
                read += 1
                said = sign_of(lo, hi, "it helps", "it hurts")
                body.append(f"- {names[name]}, against {base_text}: {m:+.4f} mAP over {n} paired seeds, "
                            f"95 % interval [{lo:+.4f}, {hi:+.4f}]: **{said}**.")
        body.append("")
    head = ["## Verdict\n",
            "The seed's claim is \"+1 mAP with focal loss\": +0.0103 with gamma 2 on VOC2007 test (on the 0-1 "
            "scale used here), +0.0058 with gamma 1 and +0.0068 with gamma 3, one run each. Each statement "
            f"below is computed from a paired 95 % interval. {read} comparisons of mAP are made (each setting "
            "against cross-entropy, the soft-gamma schedules also against gamma 2), so even if nothing differed, "
            f"the chance that at least one interval excludes 0 would be about {chance(read)}: a lone \"better\" "
            "or \"worse\" near the edge of its interval is weak evidence.\n"]
    return head + body + rare_verdict_lines(rows, seed_maps, read)


def chance(k):
    """How often at least one of k independent 95 % intervals excludes 0 when nothing differs."""
    return f"1 - 0.95^{k} = {100 * (1 - 0.95 ** k):.0f} %"


def rare_verdict_lines(rows, seed_maps, mean_read):
    """The rare classes, where focal loss is meant to act: which settings' rare-class AP differs from CE."""
    shown, intervals = [], 0
    for name, label, *_ in rows:
        if name == "ce":
            continue
        n, m, lo, hi = paired(seed_maps, name + RARE, "ce" + RARE)
        intervals += lo is not None
        if lo is not None and (lo > 0 or hi < 0):
            shown.append(f"{label}: {m:+.4f} over {n} paired seeds, 95 % interval [{lo:+.4f}, {hi:+.4f}] "
                         f"({sign_of(lo, hi, 'better', 'worse')})")
    head = ("The rare classes, which focal loss is meant to help (rare-class AP, paired table above): ")
    if not intervals:
        return [head + "no interval yet.\n"]
    if not shown:
        return [head + "no setting's interval excludes 0.\n"]
    total = mean_read + intervals
    return [head + "; ".join(shown) + f". With the {mean_read} mAP comparisons above and these {intervals}, "
            f"{total} intervals are read, so at least one would exclude 0 with nothing there about {chance(total)} "
            "of the time: this is a lead to test with more seeds, not a result.\n"]


def per_class_lines(rows, per_class, over="seeds"):
    lines = [f"Mean AP per class (over {over}):\n",
             "| class term | " + " | ".join(f"{c} ({counts.get(c, 0)})" for c in classes) + " |",
             "|---|" + "---|" * len(classes)]
    for name, label, *_ in rows:
        lines.append(f"| {name} | " + " | ".join(f"{per_class[name][c]:.3f}" for c in classes) + " |")
    lines.append("")
    return lines


def curve_lines(curves):
    """Mean test mAP (over seeds) at each evaluation: has cross-entropy flattened?"""
    its = sorted({i for c in curves.values() for i in c})
    lines = ["| class term | " + " | ".join(str(i) for i in its) + " |", "|---|" + "---|" * len(its)]
    for name, _ in NAMES:
        if name in curves:
            lines.append(f"| {name} | " + " | ".join(
                f"{statistics.mean(curves[name][i]):.3f}" if i in curves[name] else "-" for i in its) + " |")
    lines.append("")
    ce = curves.get("ce", {})
    last = sorted(ce)[-3:]
    if len(last) >= 2:  # how much cross-entropy still moved at the end, per seed
        per_seed = [[ce[i][k] for i in last] for k in range(min(len(ce[i]) for i in last))]
        lines.append(f"Cross-entropy at the last evaluations ({', '.join(map(str, last))}), per seed: " +
                     "; ".join(" / ".join(f"{x:.3f}" for x in row) for row in per_seed) +
                     f". Mean change over the last {last[-1] - last[-2]} iterations: "
                     f"{statistics.mean(r[-1] - r[-2] for r in per_seed):+.4f}.\n")
    return lines


# Issue 27's pre-registered studies (docs/experiments.md, "Pre-registration"): each writes its own block.
FOLLOW_UP = "<!-- The part below is not written by REGIME=pretrained scripts/experiment.sh"
LEAD = 0.0168  # linear soft gamma's rare-class AP gain over cross-entropy on seeds 1-5, the lead tested
NEW_SEEDS = [f"seed{k}" for k in range(6, 16)]
OLD_SEEDS = [f"seed{k}" for k in range(1, 6)]


def replace_block(path, name, body):
    """Writes body between the study's markers in path (atomically); the rest of the file is kept."""
    text = open(path).read()
    begin, end = f"<!-- begin study {name} -->", f"<!-- end study {name} -->"
    if text.count(begin) != 1 or text.count(end) != 1 or text.find(begin) > text.find(end):
        sys.exit(f"experiment_report.py: {path} needs one '{begin}' followed by one '{end}'")
    head, rest = text.split(begin)
    tail = rest.split(end)[1]
    with open(path + ".tmp", "w") as f:
        f.write(head + begin + "\n" + "\n".join(body).rstrip("\n") + "\n" + end + tail)
    os.replace(path + ".tmp", path)


def committed_maps(path):
    """The final mAP of each setting and seed given in the 3,000-iteration table (its "Per-run mAP" line),
    which the reruns of seeds 1-5 should reproduce: {setting: {"seed1": mAP, ...}}."""
    line = next((l for l in open(path).read().split(FOLLOW_UP)[0].splitlines() if l.startswith("Per-run mAP: ")), "")
    found = {}
    for part in line[len("Per-run mAP: "):].rstrip(".").split("; "):
        if ": " in part:
            name, values = part.split(": ")
            found[name] = {f"seed{k + 1}": float(v) for k, v in enumerate(values.split(", "))}
    return found


def interval_text(n, m, lo, hi):
    return f"{m:+.4f} over {n} paired seeds, 95 % interval [{lo:+.4f}, {hi:+.4f}]"


def decision(lo, hi):
    """The pre-registered reading of the rare-class interval over the new seeds."""
    if lo > 0:
        size = ("smaller than the lead's +0.0168, which the interval excludes" if hi < LEAD else
                "larger than the lead's +0.0168" if lo > LEAD else "of a size the lead's +0.0168 is within")
        return "Confirmed", f"the interval excludes 0: linear soft gamma's rare-class AP is higher than cross-entropy's, by {size}"
    if hi < LEAD:
        worse = (" and lies below 0: linear soft gamma's rare-class AP is lower than cross-entropy's" if hi < 0
                 else "; no gain is shown")
        return "Refuted", f"the interval excludes the lead's +0.0168{worse}"
    return "Undecided", "the interval contains both 0 and the lead's +0.0168; more seeds would tell"


def header_lines(rows_note):
    return [f"Written by `STUDY={STUDY} scripts/experiment.sh` (via `scripts/experiment_report.py --study {STUDY}`) "
            f"from the run records in `{out}` (each run's eval.csv, resolved config, time and command line); "
            "rerun it to continue. Measured on this project's generated data, on the CPU; none of it is a VOC "
            f"result. {rows_note}\n"]


def confirm_block(seed_maps, per_class_new, times):
    committed = committed_maps(md_path)
    rare_a, rare_b = seed_maps.get("soft_gamma_linear" + RARE, {}), seed_maps.get("ce" + RARE, {})
    map_a, map_b = seed_maps.get("soft_gamma_linear", {}), seed_maps.get("ce", {})
    new = [k for k in NEW_SEEDS if k in rare_a and k in rare_b]
    old = [k for k in OLD_SEEDS if k in rare_a and k in rare_b]
    body = header_lines(f"Finished pairs: {len(new)} of the 10 new seeds (6-15), {len(old)} of the 5 reruns (1-5). "
                        f"Rare classes: {', '.join(rare)} (training objects: "
                        + ", ".join(f"{c} {counts.get(c, 0)}" for c in rare) + ").")
    body += ["| seed | CE mAP | soft gamma mAP | CE rare-class AP | soft gamma rare-class AP | rare-class difference |",
             "|---|---|---|---|---|---|"]
    for k in new + old:
        body.append(f"| {k[4:]} | {map_b[k]:.4f} | {map_a[k]:.4f} | {rare_b[k]:.4f} | {rare_a[k]:.4f} | "
                    f"{rare_a[k] - rare_b[k]:+.4f} |")
    body.append("")
    body.append("### The pre-registered test (seeds 6-15)\n")
    n, m, lo, hi = paired(seed_maps, "soft_gamma_linear" + RARE, "ce" + RARE, NEW_SEEDS)
    if lo is None:
        body.append(f"No interval yet ({n} finished pair{'s' if n != 1 else ''} of 10).\n")
    elif n < len(NEW_SEEDS):
        body.append(f"Interim, not the decision ({n} of 10 pairs; the decision is read at 10): rare-class AP "
                    f"difference {interval_text(n, m, lo, hi)}.\n")
    else:
        word, why = decision(lo, hi)
        body.append(f"Rare-class AP, linear soft gamma minus cross-entropy: {interval_text(n, m, lo, hi)}. "
                    f"**{word}**: {why}.\n")
    beside = []
    n, m, lo, hi = paired(seed_maps, "soft_gamma_linear", "ce", NEW_SEEDS)
    if lo is not None:
        beside.append(f"- mAP on the new seeds: {interval_text(n, m, lo, hi)} ({sign_of(lo, hi, 'higher', 'lower')}).")
    n, m, lo, hi = paired(seed_maps, "soft_gamma_linear" + RARE, "ce" + RARE)
    nm, mm, lom, him = paired(seed_maps, "soft_gamma_linear", "ce")
    if lo is not None and len(old) == len(OLD_SEEDS):
        beside.append(f"- All seeds (1-15, seeds 1-5 from their reruns; biased towards the lead, which seeds 1-5 "
                    f"suggested): rare-class AP {interval_text(n, m, lo, hi)} ({sign_of(lo, hi, 'higher', 'lower')}); "
                    f"mAP {interval_text(nm, mm, lom, him)} ({sign_of(lom, him, 'higher', 'lower')}).")
        n, m, lo, hi = paired(seed_maps, "soft_gamma_linear" + RARE, "ce" + RARE, OLD_SEEDS)
        beside.append(f"- Seeds 1-5 alone, from their reruns (where the lead was found; to be read beside the "
                      f"new seeds' figure, not as a test): rare-class AP "
                      f"{interval_text(n, m, lo, hi)} ({sign_of(lo, hi, 'higher', 'lower')}).")
    elif old:
        beside.append(f"- All seeds: read when the 5 reruns have finished ({len(old)} so far).")
    if old:
        parts, reproduced = [], 0
        for k in old:
            above = (committed.get("ce", {}).get(k, float("nan")), committed.get("soft_gamma_linear", {}).get(k, float("nan")))
            reproduced += f"{map_b[k]:.4f}" == f"{above[0]:.4f}" and f"{map_a[k]:.4f}" == f"{above[1]:.4f}"
            parts.append(f"seed {k[4:]} {map_b[k]:.4f} / {map_a[k]:.4f} (above: {above[0]:.4f} / {above[1]:.4f})")
        beside.append(f"- Reruns of seeds 1-5, final mAP CE / soft gamma against the table above: " + "; ".join(parts) +
                      f". Reproduced to 4 decimals: {reproduced} of {len(old)}"
                      + ("." if reproduced == len(old) else
                         " (seeds 1-5 above ran in an earlier session, from the backbone pretrained there "
                         "(`runs/synth_pretrain` is made on each checkout, not committed), with another build and "
                         "processor: each can round differently; the reruns use the backbone of seeds 6-15)."))
    if beside:
        body += ["Beside it, not part of the decision:\n"] + beside
    body.append("")
    if per_class_new:
        body += per_class_lines(*per_class_new, over="the new seeds 6-15")
    body += times
    return body


def longtail_block(rows, seed_maps, per_class):
    test = object_counts("test")
    body = header_lines(f"Data: `yolo2 synth --out {data} {synth_args}`. Objects per class, training / test split: "
                        + ", ".join(f"{c} {counts.get(c, 0)} / {test.get(c, 0)}" for c in classes)
                        + f". Rare classes: {', '.join(rare)}.")
    if not rows:
        return body + ["No finished run yet.\n"]
    body += results_table(rows)
    body += ["Paired by seed, against cross-entropy (mean and t-based 95 % interval):\n",
             "| class term | measure | pairs | mean difference to CE | 95 % interval | reading |",
             "|---|---|---|---|---|---|"]
    names = {r[0]: r[1] for r in rows}
    read, shown = 0, []
    for name in ("focal_g2", "soft_gamma_linear"):
        if name not in names or "ce" not in names:
            continue
        for measure, key in (("mAP", ""), ("rare-class AP", RARE)):
            n, m, lo, hi = paired(seed_maps, name + key, "ce" + key)
            if lo is None:
                body.append(f"| {names[name]} | {measure} | {n} | " + (f"{m:+.4f}" if n else "-") + " | - | too few pairs |")
                continue
            read += 1
            said = sign_of(lo, hi, "better than CE", "worse than CE")
            body.append(f"| {names[name]} | {measure} | {n} | {m:+.4f} | [{lo:+.4f}, {hi:+.4f}] | {said} |")
            if said != "no difference shown":
                shown.append(f"{names[name]}, {measure}: {said} ({m:+.4f}, [{lo:+.4f}, {hi:+.4f}])")
    body.append("")
    if read:
        final = read == 4 and all(r[2] == 5 for r in rows)
        head = "Verdict" if final else f"Interim reading ({min(r[2] for r in rows)} of 5 seeds for every setting)"
        found = ("; ".join(shown) + "." if shown else "no interval excludes 0: on this 100:1 set neither focal gamma 2 "
                 "nor linear soft gamma is shown to differ from cross-entropy, in mAP or on the rare classes.")
        body.append(f"**{head}**: {found} {read} intervals are read, so with nothing there at least one would "
                    f"exclude 0 about {chance(read)} of the time" + (": an interval near its edge is a lead, not a "
                    "result.\n" if shown else ".\n"))
    body += per_class_lines(rows, per_class)
    return body


def time_lines(rows):
    return ["Time per run: " + "; ".join(f"{name} {t[0]:.0f} s median, {t[1]:.0f} s fastest"
                                         for name, _, _, _, _, _, _, t, _, _ in rows) +
            " (wall clock from start to end, two 1-thread runs at a time on 2 cores shared with the session's "
            "other work; runs were paused while the project was built, and the pause is included: not a speed "
            "figure).\n"]


if STUDY:
    rows, per_class, seed_maps, curves = collect(out, False)
    if STUDY == "confirm":
        # The per-class table of the new seeds only (the reruns are reported apart).
        new_rows, new_per_class, _, _ = collect(out, False, NEW_SEEDS)
        block = confirm_block(seed_maps, (new_rows, new_per_class) if new_rows else None, time_lines(rows) if rows else [])
    elif STUDY == "longtail":
        block = longtail_block(rows, seed_maps, per_class) + (time_lines(rows) if rows else [])
    else:
        sys.exit(f"experiment_report.py: --study {STUDY}: unknown study (confirm or longtail)")
    replace_block(md_path, STUDY, block)
    sys.exit(0)

rows, per_class, seed_maps, curves = collect(out, True)
missing = [label for name, label in NAMES if name not in {r[0] for r in rows}]

md = []
if PRETRAINED:
    md.append("# The focal-loss experiment in the seed's regime: from a pretrained backbone\n")
    md.append("Written by `REGIME=pretrained scripts/experiment.sh` (via `scripts/experiment_report.py --pretrained`) "
              f"from the runs in `{out}`; rerun it to reproduce or to continue. Every figure was measured on this "
              "project's generated data, on the CPU; none of it is a VOC result. The from-scratch tables, the "
              "contrast, are in `docs/experiments-scratch.md`.\n")
    md.append("## Setup\n")
    md.append(f"- Detection data: `yolo2 synth --out {data} {synth_args}` (8 shape classes, 20:1 long tail). "
              "Training objects per class: " + ", ".join(f"{c} {counts.get(c, 0)}" for c in classes) +
              f". Rare classes: {', '.join(rare)}.")
    md.append("- Backbone: `configs/synth_pretrain.yaml` (Darknet19 width 0.25 pretrained as a 14-class classifier "
              "on `yolo2 synth --classification`, made once by `scripts/backbone-cache.sh`), loaded as "
              "`train.init_weights` like darknet19_448.conv.23.")
    md.append(f"- Detector and schedule: `{config}` with the length and lr steps of the command lines below, "
              "identical in every run except the class term and `runtime.seed`; a seed gives every setting the "
              "same head initialisation, data order and augmentation (paired runs). mAP: VOC07 11-point on the "
              "generated test split, at the end of training.\n")

    def regime_section(rows, per_class, seed_maps, curves):
        sec = list(results_table(rows))
        sec.append("Paired by seed, the difference to cross-entropy (mean and t-based 95 % interval):\n")
        sec.extend(paired_lines(rows, seed_maps))
        sec.append("Mean test mAP during training (over the seeds):\n")
        sec.extend(curve_lines(curves))
        sec.extend(per_class_lines(rows, per_class))
        return sec

    md.append("## Results\n")
    if rows:
        md.extend(regime_section(rows, per_class, seed_maps, curves))
        md.extend(verdict_lines(rows, seed_maps))
    else:
        md.append("No finished run yet at this length.\n")
    for folder in earlier:
        e = collect(folder, False)
        if e[0]:
            md.append(f"## Another length: `{folder}`\n")
            md.append("The same settings and seeds at the length shown in the table; its command lines are in "
                      f"`{folder}/commands.txt` and each run's resolved config in `{folder}/<setting>/seed<N>/config.yaml`.\n")
            md.extend(regime_section(*e))
    md.append("## Plots (first seed of each setting)\n")
    for name, *_ in rows:
        md.append(f"- {name}: ![loss]({PLOT_DIR}/{name}_loss.png) ![mAP]({PLOT_DIR}/{name}_map.png)")
    md.append("\n## Commands\n")
    md.append("```")
    md.extend(l.rstrip() for l in open(commands_file) if l.strip())
    md.append("```\n")
    # The follow-up part (pre-registration and the studies' blocks) is kept as it is.
    kept = open(md_path).read().split(FOLLOW_UP, 1) if os.path.exists(md_path) else [""]
    if not rows and os.path.exists(md_path):
        sys.exit(f"experiment_report.py: no finished run in {out}; {md_path} is left as it is")
    with open(md_path + ".tmp", "w") as f:
        f.write("\n".join(md) + ("\n" + FOLLOW_UP + kept[1] if len(kept) > 1 else ""))
    os.replace(md_path + ".tmp", md_path)
    sys.exit(0)
md.append("# The focal-loss experiment on the generated long-tailed dataset\n")
md.append("Written by `scripts/experiment.sh` (via `scripts/experiment_report.py`) from the runs in "
          f"`{out}`; rerun it to reproduce. Every figure below was measured on this project's generated "
          "data, on the CPU; none of it is a VOC result. These runs train from scratch; the experiment in "
          "the seed's regime (from a pretrained backbone) is `docs/experiments.md`.\n")
md.append("## Setup\n")
md.append(f"- Dataset: `yolo2 synth --out {data} {synth_args}`: 8 shape classes, long-tailed "
          "(20:1 between the most and the least frequent), VOCdevkit layout. Training objects per class: " +
          ", ".join(f"{c} {counts.get(c, 0)}" for c in classes) + f". Rare classes (the 3 least frequent): "
          f"{', '.join(rare)}.")
md.append(f"- Model and schedule: `{config}` (the demo's), identical in every run except the class term "
          "and `runtime.seed`, which changes the initialisation, the data order and the augmentation.")
md.append("- Metric: VOC07 11-point mAP on the generated test split at the end of training.\n")
md.append("## Results\n")
md.extend(results_table(rows))
if missing:
    md.append("Not run at this length: " + "; ".join(missing) + ".\n")
for folder in earlier:
    e_rows = collect(folder, False)[0]
    if e_rows:
        md.append(f"Earlier runs of the script (`{folder}`, same settings and seeds, the schedule shortened "
                  "to the iterations shown, lr steps at 80 % and 94 %):\n")
        md.extend(results_table(e_rows))
md.extend(per_class_lines(rows, per_class))
if len(rows) >= 2:
    base = next((r for r in rows if r[0] == "ce"), None)
    if base is not None:
        md.append("## What the numbers say\n")
        for name, label, n, m, sd, r, sdr, *_ in rows:
            if name == "ce":
                continue
            diff = m - base[3]
            # Differences within about two standard errors of the difference are not distinguishable.
            se = ((sd ** 2) / n + (base[4] ** 2) / base[2]) ** 0.5 if n > 1 and base[2] > 1 else float("nan")
            verdict = ("within noise" if se == se and abs(diff) < 2 * se else
                       ("better" if diff > 0 else "worse") if se == se else "(one run: no variance)")
            md.append(f"- {label}: {diff:+.4f} mAP against cross-entropy ({verdict}; 2 standard errors of the "
                      f"difference = {2 * se:.4f}); rare classes {r - base[5]:+.4f}.")
        md.append("")
md.append("## Plots (first seed of each setting)\n")
for name, *_ in rows:
    md.append(f"- {name}: ![loss]({PLOT_DIR}/{name}_loss.png) ![mAP]({PLOT_DIR}/{name}_map.png)")
md.append("")
md.append("## The published reference, and what reproducing it would take\n")
md.append("The seed's blog reported, on VOC2007 test with Darknet19 YOLOv2 at 416 x 416: 73.05 mAP with "
          "cross-entropy and 74.08 with focal loss (gamma 2), one run each. Reproducing that needs what this "
          "machine does not have: the VOC2007+2012 images (`data.train` on a VOCdevkit, see the README), "
          "ImageNet-pretrained Darknet19 weights (`darknet19_448.conv.23`, `train.init_weights`), and "
          "darknet's schedule (`configs/voc_ce.yaml` / `configs/voc_focal.yaml`: 80,200 iterations of 64 "
          "images at 320-608 px, about 5 million images). On one GPU that is a day or two per run; the "
          "difference claimed (about 1 mAP) is of the order of the seed-to-seed spread of detectors, so "
          "at least 3 seeds per setting (6 runs, or `yolo2 train --nproc`/several GPUs) would be needed to "
          "say whether it is real.\n")
md.append("## Commands\n")
md.append("```")
md.extend(l.rstrip() for l in open(commands_file) if l.strip())
md.append("```")
md.append("")
md.append(f"Resolved configs: `{out}/<setting>/seed<N>/config.yaml`.\n")
with open(md_path, "w") as f:
    f.write("\n".join(md))
