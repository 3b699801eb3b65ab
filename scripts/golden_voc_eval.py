#!/usr/bin/python3
"""Golden values for tests/test_voc_ap.cpp (test GoldenVocEval.*).

An independent, pure-Python float64 restatement of py-faster-rcnn's lib/datasets/voc_eval.py
(yolov2-reference.md section 6.1), run on a pseudo-random case that the C++ test rebuilds
bit-for-bit from the same generator. It prints the C++ block of expected values that sits between
the "BEGIN GOLDEN" / "END GOLDEN" markers of tests/test_voc_ap.cpp; to regenerate:

    /usr/bin/python3 scripts/golden_voc_eval.py

The case generator (mirrored by GoldenCase in the test):
  - LCG: state <- (state * 6364136223846793005 + 1442695040888963407) mod 2**64 (Knuth's MMIX
    constants), starting from SEED; next_u32() = state >> 32 after the step;
    uniform(n) = next_u32() % n.
  - Every coordinate is an integer or a multiple of 0.5 and every score is an integer multiple of
    2**-24 below 1, so C++ floats hold the very values Python's doubles hold.
  - Scores are distinct by construction (the detection index is part of the score), so the order
    of ties cannot differ between the two sides.
No numpy: the machine's /usr/bin/python3 has none, and numpy is not needed for float64 math.
"""

import math

SEED = 20240607
NUM_IMAGES = 60
NUM_CLASSES = 4  # class 3 gets difficult ground truth only: its AP is NaN
MASK64 = (1 << 64) - 1


class Lcg:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u32(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK64
        return self.state >> 32

    def uniform(self, n):
        return self.next_u32() % n


def make_case(seed):
    """Returns (gts, dets): gts[image] = [(label, x1, y1, x2, y2, difficult)],
    dets = [(image, label, score, x1, y1, x2, y2)] in generation order."""
    rng = Lcg(seed)
    gts = []
    for _ in range(NUM_IMAGES):
        objects = []
        count = rng.uniform(6)
        for _ in range(count):
            label = rng.uniform(3)
            x1 = rng.uniform(200)
            y1 = rng.uniform(200)
            w = 8 + rng.uniform(80)
            h = 8 + rng.uniform(80)
            difficult = rng.uniform(100) < 15
            objects.append((label, float(x1), float(y1), float(x1 + w), float(y1 + h), difficult))
        if rng.uniform(10) == 0:
            x1 = rng.uniform(200)
            y1 = rng.uniform(200)
            objects.append((3, float(x1), float(y1), float(x1 + 40), float(y1 + 30), True))
        gts.append(objects)

    dets = []

    def score():
        # Distinct: the running index fills the low 13 bits (fewer than 8192 detections).
        high = rng.uniform(2048)
        return (high * 8192 + len(dets)) / 16777216.0

    def jitter():
        return (rng.uniform(11) - 5) * 0.5

    for image in range(NUM_IMAGES):
        for (label, x1, y1, x2, y2, _) in gts[image]:
            copies = rng.uniform(3)
            for _ in range(copies):
                det_label = label if rng.uniform(10) != 0 else rng.uniform(NUM_CLASSES)
                jx1 = x1 + jitter()
                jy1 = y1 + jitter()
                jx2 = x2 + jitter()
                jy2 = y2 + jitter()
                s = score()
                dets.append((image, det_label, s, jx1, jy1, jx2, jy2))
            # A detection at IoU exactly 0.5 ('+1' widths W, shift W / 3: (W - s) / (W + s) = 1/2),
            # exact in binary when 2W is a multiple of 3; it separates >= from >.
            width = x2 - x1 + 1.0
            if rng.uniform(3) == 0 and int(2 * width) % 3 == 0:
                shift = width / 3.0
                s = score()
                dets.append((image, label, s, x1 + shift, y1, x2 + shift, y2))
        clutter = rng.uniform(4)
        for _ in range(clutter):
            det_label = rng.uniform(NUM_CLASSES)
            x1 = rng.uniform(200)
            y1 = rng.uniform(200)
            x2 = x1 + 8 + rng.uniform(80)
            y2 = y1 + 8 + rng.uniform(80)
            s = score()
            dets.append((image, det_label, s, float(x1), float(y1), float(x2), float(y2)))
    assert len(dets) < 8192
    return gts, dets


def overlap_plus_one(d, g):
    """VOC IoU with inclusive pixel corners; same float64 operation order as voc_eval.py."""
    iw = max(min(g[2], d[2]) - max(g[0], d[0]) + 1.0, 0.0)
    ih = max(min(g[3], d[3]) - max(g[1], d[1]) + 1.0, 0.0)
    inter = iw * ih
    union = (d[2] - d[0] + 1.0) * (d[3] - d[1] + 1.0) + (g[2] - g[0] + 1.0) * (g[3] - g[1] + 1.0) - inter
    return inter / union


def ap_11_point(rec, prec):
    total = 0.0
    for k in range(11):
        t = 0.0 + k * 0.1  # numpy arange(0., 1.1, 0.1) element k
        qualifying = [p for r, p in zip(rec, prec) if r >= t]
        total = total + (max(qualifying) if qualifying else 0.0) / 11.0
    return total


def ap_all_point(rec, prec):
    # Area under the "best precision at recall >= r" staircase: each recall step is weighted by
    # the highest precision at or after it (the envelope of voc_ap with its 0 sentinels).
    area = 0.0
    previous = 0.0
    n = len(rec)
    for i in range(n):
        if rec[i] != previous:
            area += (rec[i] - previous) * max(prec[i:])
            previous = rec[i]
    return area  # from the last recall to 1 the envelope is the 0 sentinel: no area


def evaluate_class(gts, dets, cls, inclusive, threshold=0.5):
    npos = sum(1 for objects in gts for o in objects if o[0] == cls and not o[5])
    ranked = sorted((d for d in dets if d[1] == cls), key=lambda d: -d[2])
    used = set()
    tp = fp = 0.0
    rec, prec = [], []
    for d in ranked:
        image = d[0]
        best, best_index = -math.inf, None
        for index, o in enumerate(gts[image]):
            if o[0] != cls:
                continue
            ov = overlap_plus_one(d[3:], o[1:5])
            if ov > best:
                best, best_index = ov, index
        hit = best >= threshold if inclusive else best > threshold
        if hit and gts[image][best_index][5]:
            pass  # a difficult object: the detection counts for nothing
        elif hit and (image, best_index) not in used:
            used.add((image, best_index))
            tp += 1.0
        else:
            fp += 1.0
        rec.append(tp / npos if npos else math.nan)
        prec.append(tp / max(tp + fp, 2.220446049250313e-16))
    return npos, rec, prec, int(tp), int(fp)


def cxx(value):
    return "kNaN" if math.isnan(value) else repr(value)


def main():
    gts, dets = make_case(SEED)
    print("// BEGIN GOLDEN (generated by scripts/golden_voc_eval.py; do not edit by hand)")
    print("constexpr uint64_t kGoldenSeed = %dULL;" % SEED)
    print("constexpr int kGoldenImages = %d;" % NUM_IMAGES)
    print("constexpr int kGoldenClasses = %d;" % NUM_CLASSES)
    print("constexpr int kGoldenGroundTruth = %d;" % sum(len(o) for o in gts))
    print("constexpr int kGoldenDetections = %d;" % len(dets))
    print("// {metric, inclusive, {AP per class}, mAP, {TP per class}, {FP per class}}")
    print("const std::vector<GoldenExpectation> kGoldenExpected = {")
    for metric in ("Voc07", "Voc12"):
        for inclusive in (True, False):
            aps, tps, fps = [], [], []
            for cls in range(NUM_CLASSES):
                npos, rec, prec, tp, fp = evaluate_class(gts, dets, cls, inclusive)
                if npos == 0:
                    aps.append(math.nan)  # no ground truth to recall: excluded from the mean
                elif metric == "Voc07":
                    aps.append(ap_11_point(rec, prec))
                else:
                    aps.append(ap_all_point(rec, prec))
                tps.append(tp)
                fps.append(fp)
            finite = [a for a in aps if not math.isnan(a)]
            mean = sum(finite) / len(finite)
            print("    {ApMetric::%s, %s, {%s}, %s, {%s}, {%s}}," % (
                metric, "true" if inclusive else "false", ", ".join(cxx(a) for a in aps),
                cxx(mean), ", ".join(str(t) for t in tps), ", ".join(str(f) for f in fps)))
    print("};")
    print("// END GOLDEN")


if __name__ == "__main__":
    main()
