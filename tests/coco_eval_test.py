#!/usr/bin/env python3
"""yolo2's COCO evaluation against pycocotools (the reference; a test dependency only).

Generates COCO cases (ground truth with crowd boxes, many classes, category ids that are not
0..N-1, images without objects, boxes of every area range, an image with more than 100 detections
of one class), writes them as a COCO folder (annotations/instances_test.json and tiny PNGs of the
declared sizes) and a results JSON, runs

    yolo2 eval --data ROOT --split test --detections dets.json --metric coco --json out.json

and compares its 12 figures and its per-class AP with pycocotools' COCOeval (iouType bbox) to 1e-6.
Every coordinate is a multiple of 1/4 and every score a multiple of 2**-20, so yolo2's float32 boxes
hold the very values pycocotools reads. The images are listed out of id order, and one case has only
16 distinct scores, so ties across images are broken as pycocotools breaks them (by image id).

    python3 tests/coco_eval_test.py build/yolo2
Exit status 77 (ctest's skip) when pycocotools is not installed (scripts/setup.sh installs it).
"""

import contextlib
import io
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import zlib

try:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED: pycocotools is not importable ({e}); scripts/setup.sh installs it into .test-deps/")
    sys.exit(77)


def png(width, height):
    """A black RGB PNG (a valid image of the declared size; the evaluation never decodes it)."""
    raw = b"".join(b"\x00" + b"\x00" * (3 * width) for _ in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def quarter(x):
    return round(x * 4) / 4


def quarter_below(x):
    return math.floor(x * 4) / 4


def make_case(seed, num_images, num_classes, ties):
    rng = random.Random(seed)
    cat_ids = sorted(rng.sample(range(1, 200), num_classes))
    images, anns, dets = [], [], []
    # Distinct scores, or (ties) only 16 values, so that equal scores meet across and within images.
    scores = [rng.randint(1, 16) << 16 for _ in range(20000)] if ties else rng.sample(range(1, 1 << 20), 20000)
    next_score = iter(scores)
    for i in range(num_images):
        w, h = rng.choice([(640, 480), (320, 240), (500, 375), (200, 300)])
        image_id = 1000 + 7 * i
        images.append({"id": image_id, "file_name": f"im{i:03d}.png", "width": w, "height": h})
        n = 0 if i % 6 == 5 else rng.randint(1, 8)  # some images without objects
        for _ in range(n):
            side = rng.choice([12, 24, 40, 70, 110, 180])  # small, medium and large areas
            bw = quarter(min(w - 1, side * rng.uniform(0.6, 1.4)))
            bh = quarter(min(h - 1, side * rng.uniform(0.6, 1.4)))
            x, y = quarter_below(rng.uniform(0, w - bw)), quarter_below(rng.uniform(0, h - bh))
            cat = rng.choice(cat_ids[: num_classes - 2])  # the last two classes have no ground truth
            crowd = 1 if rng.random() < 0.1 else 0
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": [x, y, bw, bh],
                         "area": bw * bh, "iscrowd": crowd})
            for _ in range(rng.randint(0, 3)):  # hits and near misses
                jx, jy = quarter(rng.uniform(-0.3, 0.3) * bw), quarter(rng.uniform(-0.3, 0.3) * bh)
                dw, dh = quarter(bw * rng.uniform(0.7, 1.3)), quarter(bh * rng.uniform(0.7, 1.3))
                dets.append({"image_id": image_id, "category_id": cat, "bbox": [x + jx, y + jy, dw, dh],
                             "score": next(next_score) / (1 << 20)})
        for _ in range(rng.randint(0, 4)):  # false positives, any class
            dw, dh = quarter(rng.uniform(8, 150)), quarter(rng.uniform(8, 150))
            dets.append({"image_id": image_id, "category_id": rng.choice(cat_ids),
                         "bbox": [quarter(rng.uniform(0, w - dw)), quarter(rng.uniform(0, h - dh)), dw, dh],
                         "score": next(next_score) / (1 << 20)})
    # One image with 130 detections of one class: the 100-per-image limit.
    first = images[0]
    for _ in range(130):
        dets.append({"image_id": first["id"], "category_id": cat_ids[0],
                     "bbox": [quarter(rng.uniform(0, 300)), quarter(rng.uniform(0, 200)), 40.0, 30.0],
                     "score": next(next_score) / (1 << 20)})
    rng.shuffle(images)  # the file's order is not the ids' (pycocotools evaluates by sorted id)
    cats = [{"id": c, "name": f"class{c}"} for c in cat_ids]
    rng.shuffle(cats)  # yolo2 orders them by id, as pycocotools' getCatIds does
    return {"images": images, "annotations": anns, "categories": cats}, dets


def reference(gt_path, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class = []
    for k in range(len(ev.params.catIds)):
        p = ev.eval["precision"][:, :, k, 0, 2]
        per_class.append(float(p[p > -1].mean()) if (p > -1).any() else -1.0)
    return [float(s) for s in ev.stats], per_class


def main():
    yolo2 = sys.argv[1] if len(sys.argv) > 1 else "build/yolo2"
    failures = 0
    for seed, num_images, num_classes, ties in [(1, 40, 12, False), (2, 25, 30, False), (3, 60, 5, True)]:
        gt, dets = make_case(seed, num_images, num_classes, ties)
        with tempfile.TemporaryDirectory(prefix="yolo2-coco-") as root:
            os.makedirs(os.path.join(root, "annotations"))
            os.makedirs(os.path.join(root, "test"))
            gt_path = os.path.join(root, "annotations", "instances_test.json")
            with open(gt_path, "w") as f:
                json.dump(gt, f)
            for im in gt["images"]:
                with open(os.path.join(root, "test", im["file_name"]), "wb") as f:
                    f.write(png(im["width"], im["height"]))
            dets_path = os.path.join(root, "dets.json")
            with open(dets_path, "w") as f:
                json.dump(dets, f)
            out = os.path.join(root, "out.json")
            cmd = [yolo2, "eval", "--data", root, "--split", "test", "--detections", dets_path, "--metric", "coco",
                   "--json", out]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                print(f"case {seed}: yolo2 failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
                return 1
            with open(out) as f:
                got = json.load(f)
            stats, per_class = reference(gt_path, dets)
        mine = [got["stats"][name] for name in got["stat_names"]]
        for name, a, b in zip(got["stat_names"], mine, stats):
            if abs(a - b) > 1e-6:
                print(f"case {seed}: {name} yolo2 {a!r} pycocotools {b!r}")
                failures += 1
        for k, (a, b) in enumerate(zip(got["per_class_ap"], per_class)):
            if abs(a - b) > 1e-6:
                print(f"case {seed}: class {k} AP yolo2 {a!r} pycocotools {b!r}")
                failures += 1
        print(f"case {seed} ({num_images} images, {num_classes} classes, {len(gt['annotations'])} boxes, "
              f"{len(dets)} detections): AP {stats[0]:.6f} AP50 {stats[1]:.6f} AR100 {stats[8]:.6f}")
    if failures:
        print(f"{failures} figure(s) differ from pycocotools")
        return 1
    print("every figure equals pycocotools' to 1e-6")
    return 0


if __name__ == "__main__":
    sys.exit(main())
