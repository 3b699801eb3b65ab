#!/usr/bin/python3
"""Golden values for tests/test_anchors.cpp (test GoldenAnchors.*).

An independent, pure-Python float64 restatement of YOLOv2's dimension clusters (the paper's
section 2: k-means with d = 1 - IoU of width/height boxes centred together) with k-means++ seeding,
as src/data/anchors.cpp documents it, run on boxes that the C++ test rebuilds bit-for-bit from the
same generator. It prints the C++ block of expected values that sits between the "BEGIN GOLDEN" /
"END GOLDEN" markers of tests/test_anchors.cpp; to regenerate:

    /usr/bin/python3 scripts/golden_anchors.py

The boxes: an LCG, state <- (state * 6364136223846793005 + 1442695040888963407) mod 2**64 (Knuth's
MMIX constants) from SEED, next_u32() = state >> 32 after the step; each box is drawn around one of
four base shapes, w = base_w * (0.5 + (next_u32() % 1024) / 1024), the same for h, so every value is
exact in both languages. The k-means++ draws replay util::Rng (splitmix64, yolo2's generator).
"""

from golden_voc_eval import MASK64, Lcg  # the same LCG as the VOC golden case

SEED = 20261206
NUM_BOXES = 400
BASES = [(0.6, 0.9), (2.0, 1.5), (4.5, 6.0), (10.0, 8.0)]

class SplitMix:
    """yolo2::util::Rng."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next_u64() >> 11) * 2.0**-53

    def uniform_int(self, lo, hi):
        return lo + self.next_u64() % (hi - lo + 1)


def make_boxes():
    g = Lcg(SEED)
    boxes = []
    for i in range(NUM_BOXES):
        bw, bh = BASES[g.next_u32() % len(BASES)]
        w = bw * (0.5 + (g.next_u32() % 1024) / 1024.0)
        h = bh * (0.5 + (g.next_u32() % 1024) / 1024.0)
        boxes.append((w, h))
    return boxes


def iou(a, b):
    inter = min(a[0], b[0]) * min(a[1], b[1])
    return inter / (a[0] * a[1] + b[0] * b[1] - inter)


def best(box, cents):
    j, v = 0, -1.0
    for c, cent in enumerate(cents):
        x = iou(box, cent)
        if x > v:
            j, v = c, x
    return j, v


def seeds(boxes, k, seed):
    rng = SplitMix(seed)
    out = [boxes[rng.uniform_int(0, len(boxes) - 1)]]
    while len(out) < k:
        d2 = [(1.0 - best(b, out)[1]) ** 2 for b in boxes]
        total = 0.0
        for d in d2:
            total += d
        r = rng.uniform() * total
        acc, pick = 0.0, len(boxes) - 1
        for i, d in enumerate(d2):
            acc += d
            if acc > r and d > 0:
                pick = i
                break
        out.append(boxes[pick])
    return out


def lloyd(boxes, cents, max_iter=1000):
    assign = [-1] * len(boxes)
    it = 0
    while it < max_iter:
        changed = False
        ious = []
        for i, b in enumerate(boxes):
            j, v = best(b, cents)
            changed = changed or j != assign[i]
            assign[i] = j
            ious.append(v)
        if not changed:
            break
        k = len(cents)
        sw, sh, n = [0.0] * k, [0.0] * k, [0] * k
        for i, b in enumerate(boxes):
            sw[assign[i]] += b[0]
            sh[assign[i]] += b[1]
            n[assign[i]] += 1
        new, taken = [], set()
        for c in range(k):
            if n[c] > 0:
                new.append((sw[c] / n[c], sh[c] / n[c]))
            else:
                worst = min((i for i in range(len(boxes)) if i not in taken), key=lambda i: (ious[i], i))
                taken.add(worst)
                new.append(boxes[worst])
        cents = new
        it += 1
    cents = sorted(cents, key=lambda c: c[0] * c[1])  # stable, as std::stable_sort
    mean = 0.0
    for b in boxes:
        mean += best(b, cents)[1]
    return cents, mean / len(boxes), it


def clusters(boxes, k, seed, restarts):
    kept = None
    for r in range(restarts):
        run = lloyd(boxes, seeds(boxes, k, seed + r))
        if kept is None or run[1] > kept[1]:
            kept = run
    return kept


def main():
    boxes = make_boxes()
    print("// BEGIN GOLDEN (scripts/golden_anchors.py)")
    for k, seed, restarts in [(5, 0, 1), (5, 7, 3), (3, 1, 2), (9, 2, 4)]:
        cents, mean, it = clusters(boxes, k, seed, restarts)
        flat = ", ".join(repr(v) for c in cents for v in c)
        print(f"{{{k}, {seed}, {restarts}, {{{flat}}}, {mean!r}, {it}}},")
    print("// END GOLDEN")


if __name__ == "__main__":
    main()
