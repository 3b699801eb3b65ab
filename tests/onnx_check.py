#!/usr/bin/env python3
"""ONNX Runtime against yolo2 (tests/test_interop.cpp writes the jobs).

  onnx_check.py raw CASES.json     each case: model, input (+shape), expected raw output (+shape),
                                   tolerance relative to the output's largest magnitude
  onnx_check.py detect JOB.json    the decode + NMS graph on a batch against the Detector's detections

Exit status 0 when everything matches, 1 on a mismatch (printed), 77 without onnxruntime.
"""
import json
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    print(f"skipped: {e} (scripts/setup.sh installs onnxruntime into .test-deps)")
    sys.exit(77)

META_KEYS = {"names", "anchors", "imgsz", "input", "resize", "outputs", "stride", "task"}


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def check_metadata(sess, path):
    meta = sess.get_modelmeta().custom_metadata_map
    missing = META_KEYS - set(meta)
    if missing:
        print(f"FAIL {path}: metadata lacks {sorted(missing)}")
        return False
    inp = sess.get_inputs()[0]
    if inp.name != "images" or not isinstance(inp.shape[0], str):
        print(f"FAIL {path}: input {inp.name} {inp.shape}: expected images with a dynamic batch")
        return False
    return True


def raw(cases):
    ok = True
    for c in cases:
        sess = session(c["model"])
        ok &= check_metadata(sess, c["model"])
        x = np.fromfile(c["input"], dtype=np.float32).reshape(c["input_shape"])
        y = sess.run(None, {"images": x})[0]
        ref = np.fromfile(c["expected"], dtype=np.float32).reshape(c["expected_shape"])
        if y.shape != ref.shape:
            print(f"FAIL {c['label']}: shape {y.shape}, yolo2 {ref.shape}")
            ok = False
            continue
        err = float(np.abs(y.astype(np.float64) - ref).max() / np.abs(ref).max())
        good = err <= c["tolerance"]
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} {c['label']}: max |onnxruntime - yolo2| / max |yolo2| = {err:.2e}")
    return ok


def detect(job):
    sess = session(job["model"])
    ok = check_metadata(sess, job["model"])
    x = np.fromfile(job["input"], dtype=np.float32).reshape(job["input_shape"])
    window = np.fromfile(job["window"], dtype=np.float32).reshape(x.shape[0], 4)
    boxes, scores, selected = sess.run(None, {"images": x, "window": window})
    for b, image in enumerate(job["images"]):
        ax, bx, ay, by = image["affine"]
        rows = [(int(c), int(i)) for bb, c, i in selected if bb == b]
        dets = []
        for c, i in rows:
            x1, y1, x2, y2 = (float(v) for v in boxes[b, i])
            # input pixels -> image pixels (the inverse of the letterbox's affine map)
            dets.append((c, float(scores[b, i, c]), [(x1 - bx) / ax, (y1 - by) / ay, (x2 - bx) / ax, (y2 - by) / ay]))
        dets.sort(key=lambda d: -d[1])
        dets = dets[: job["max_detections"]]
        ref = [(d["label"], d["score"], d["box"]) for d in image["detections"]]
        key = lambda d: (d[0], -d[1])
        dets.sort(key=key)
        ref.sort(key=key)
        if len(dets) != len(ref):
            print(f"FAIL image {b}: {len(dets)} detections from onnxruntime, {len(ref)} from yolo2")
            ok = False
            continue
        worst_box = max((abs(p - q) for d, r in zip(dets, ref) for p, q in zip(d[2], r[2])), default=0.0)
        worst_score = max((abs(d[1] - r[1]) for d, r in zip(dets, ref)), default=0.0)
        labels = all(d[0] == r[0] for d, r in zip(dets, ref))
        good = labels and worst_box <= 0.01 and worst_score <= 1e-5
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} image {b}: {len(dets)} detections, labels equal {labels}, "
              f"max box difference {worst_box:.2e} px, max score difference {worst_score:.2e}")
    return ok


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        job = json.load(f)
    print(f"onnxruntime {ort.__version__}")
    sys.exit(0 if (raw(job) if mode == "raw" else detect(job)) else 1)
