#!/usr/bin/env python3
"""A run folder's TensorBoard event files read by TensorBoard's own loader (record checksums
checked) against its metrics.csv and eval.csv: every value, once per step, equal as float32.

  tensorboard_check.py RUN_DIR     exit 0 when equal, 1 otherwise (printed), 77 without tensorboard
"""
import csv
import glob
import os
import struct
import sys

try:
    import numpy as np
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.backend.event_processing import event_accumulator
except ImportError as e:
    print(f"skipped: {e} (scripts/setup.sh installs tensorboard into .test-deps)")
    sys.exit(77)


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], [[float(v) for v in r] for r in rows[1:] if r]


def main(run):
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*.yolo2")))
    if not files:
        print(f"FAIL: no event files in {run}")
        return False
    scalars, images, versions, starts = {}, {}, 0, []
    for path in files:
        for event in LegacyEventFileLoader(path).Load():  # raises on a bad checksum
            if event.HasField("file_version"):
                versions += event.file_version == "brain.Event:2"
            if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                starts.append(event.step)
            for v in event.summary.value:
                which = v.WhichOneof("value")
                key = (v.tag, event.step)
                if which == "simple_value":
                    if key in scalars:
                        print(f"FAIL: {v.tag} at step {event.step} written twice")
                        return False
                    scalars[key] = v.simple_value
                elif which == "image":
                    images.setdefault(v.tag, []).append((event.step, v.image))
    ok = versions == len(files)
    if not ok:
        print(f"FAIL: {versions} file_version records in {len(files)} files")
    # Each resumed process's file starts its curves after its checkpoint (RESUMED_AT: the steps).
    resumed = [int(s) + 1 for s in os.environ.get("RESUMED_AT", "").split()]
    if starts != resumed:
        print(f"FAIL: SessionLog START at steps {starts}, expected {resumed}")
        ok = False
    expected = {}
    for name, prefix, first in (("metrics.csv", "train/", 1), ("eval.csv", "eval/", 2)):
        header, rows = read_csv(os.path.join(run, name))
        for row in rows:
            for col in range(first, len(header)):
                expected[(prefix + header[col], int(row[0]))] = row[col]
    missing = sorted(set(expected) - set(scalars))
    extra = sorted(set(scalars) - set(expected))
    if missing or extra:
        print(f"FAIL: {len(missing)} CSV values missing from the events (first {missing[:3]}), "
              f"{len(extra)} events not in the CSV files (first {extra[:3]})")
        ok = False
    unequal = [(k, v, scalars[k]) for k, v in expected.items() if k in scalars
               and not (np.float32(v) == np.float32(scalars[k]) or (np.isnan(v) and np.isnan(scalars[k])))]
    if unequal:
        print(f"FAIL: {len(unequal)} values differ, first {unequal[:3]}")
        ok = False
    for tag in ("plots/loss", "plots/map", "plots/pr"):
        shots = images.get(tag, [])
        if not shots:
            print(f"FAIL: no {tag} image")
            ok = False
        steps = [step for step, _ in shots]
        if len(set(steps)) != len(steps):
            print(f"FAIL: {tag} written twice at a step: {steps}")
            ok = False
        for step, im in shots:
            png = im.encoded_image_string
            w, h = struct.unpack(">II", png[16:24])
            if png[:8] != b"\x89PNG\r\n\x1a\n" or (w, h) != (im.width, im.height):
                print(f"FAIL: {tag} at step {step}: not a PNG of {im.width} x {im.height}")
                ok = False
    # TensorBoard's accumulator (what its scalar dashboard reads) sees one point per step.
    acc = event_accumulator.EventAccumulator(run, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    steps = [e.step for e in acc.Scalars("train/loss")]
    metrics_steps = sorted(k[1] for k in expected if k[0] == "train/loss")
    if steps != metrics_steps:
        print(f"FAIL: the accumulator's train/loss steps {steps}, metrics.csv {metrics_steps}")
        ok = False
    print(f"{'ok' if ok else 'FAIL'}: {len(files)} event files, {len(scalars)} scalars equal to the CSV files' "
          f"{len(expected)} values, images {sorted((t, len(s)) for t, s in images.items())}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1]) else 1)
