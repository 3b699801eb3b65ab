#!/usr/bin/env python3
"""scripts/get-voc.sh against a local HTTP server on 127.0.0.1 serving generated VOC tarballs.

No machine here reaches the VOC hosts, so the archives are made here (VOCdevkit/VOC2007 trainval and
test, VOCdevkit/VOC2012 trainval, a few images each) and served with HTTP range support, through the
script's own overrides (YOLO2_VOC_MIRRORS, YOLO2_VOC_ARCHIVES). Checked: a first mirror that answers
404 is passed over; a fresh run unpacks all three into one VOCdevkit; a second run downloads nothing
and leaves everything untouched; a partial download resumes with a range request; a truncated archive
and one with a wrong checksum are refused, named, and not unpacked; an existing complete copy the
script did not write is left alone.

    python3 tests/get_voc_test.py [scripts/get-voc.sh]
"""

import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import threading

SCRIPT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "scripts", "get-voc.sh")
REQUESTS = []  # (path, Range header)


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with `Range: bytes=N-` answered by 206, as the VOC host does."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        REQUESTS.append((self.path, self.headers.get("Range")))
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


def tarball(folder, split, ids):
    """A VOC archive: VOCdevkit/<folder>/{ImageSets/Main/<split>.txt, JPEGImages, Annotations}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(f"VOCdevkit/{folder}/{name}")
            info.size = len(data)
            info.mtime = 1
            tar.addfile(info, io.BytesIO(data))
        add(f"ImageSets/Main/{split}.txt", "".join(i + "\n" for i in ids).encode())
        for i in ids:
            add(f"JPEGImages/{i}.jpg", b"\xff\xd8" + os.urandom(3000) + b"\xff\xd9")
            add(f"Annotations/{i}.xml", f"<annotation><filename>{i}.jpg</filename></annotation>".encode())
    return buf.getvalue()


def run(out, mirrors, table):
    env = dict(os.environ, YOLO2_VOC_MIRRORS=mirrors, YOLO2_VOC_ARCHIVES=table)
    return subprocess.run(["bash", SCRIPT, out], capture_output=True, text=True, env=env)


def expect(cond, what, r=None):
    if not cond:
        print("FAILED:", what)
        if r is not None:
            print(r.stdout, r.stderr)
        sys.exit(1)
    print("ok:", what)


def main():
    with tempfile.TemporaryDirectory(prefix="yolo2-getvoc-") as tmp:
        served = os.path.join(tmp, "served")
        archives = {
            ("VOCtrainval_06-Nov-2007.tar", "2007", "VOC2007", "trainval"): tarball("VOC2007", "trainval", ["000005", "000007"]),
            ("VOCtest_06-Nov-2007.tar", "2007", "VOC2007", "test"): tarball("VOC2007", "test", ["000001", "000004"]),
            ("VOCtrainval_11-May-2012.tar", "2012", "VOC2012", "trainval"): tarball("VOC2012", "trainval", ["2008_000002"]),
        }
        table = []
        for (name, year, folder, split), data in archives.items():
            os.makedirs(os.path.join(served, f"voc{year}"), exist_ok=True)
            with open(os.path.join(served, f"voc{year}", name), "wb") as f:
                f.write(data)
            table.append(f"{name} {hashlib.md5(data).hexdigest()} {len(data)} {year} {folder} {split}")
        table = "\n".join(table)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: RangeHandler(*a, directory=served))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        mirrors = f"{base}/missing/ {base}/voc{{year}}/"

        # A fresh run: the first mirror answers 404, the second serves; all three unpacked.
        out = os.path.join(tmp, "data")
        r = run(out, mirrors, table)
        expect(r.returncode == 0, "a fresh run succeeds", r)
        for rel in ["VOC2007/JPEGImages/000005.jpg", "VOC2007/JPEGImages/000004.jpg", "VOC2007/ImageSets/Main/test.txt",
                    "VOC2012/Annotations/2008_000002.xml"]:
            expect(os.path.isfile(os.path.join(out, "VOCdevkit", rel)), f"unpacked {rel}")
        expect(any(p.startswith("/missing/") for p, _ in REQUESTS), "the first mirror was tried")

        # A second run downloads nothing and changes nothing.
        REQUESTS.clear()
        stamp = os.stat(os.path.join(out, "VOCdevkit/VOC2007/JPEGImages/000005.jpg")).st_mtime_ns
        r = run(out, mirrors, table)
        expect(r.returncode == 0 and not REQUESTS, "a second run fetches nothing", r)
        expect(r.stdout.count("left untouched") == 3, "a second run says each copy is left untouched", r)
        expect(os.stat(os.path.join(out, "VOCdevkit/VOC2007/JPEGImages/000005.jpg")).st_mtime_ns == stamp,
               "a second run touches no file")

        # A partial download resumes with a range request.
        out2 = os.path.join(tmp, "resume")
        name, data = "VOCtest_06-Nov-2007.tar", archives[("VOCtest_06-Nov-2007.tar", "2007", "VOC2007", "test")]
        os.makedirs(os.path.join(out2, "downloads"))
        with open(os.path.join(out2, "downloads", name + ".part"), "wb") as f:
            f.write(data[: len(data) // 2])
        REQUESTS.clear()
        r = run(out2, f"{base}/voc{{year}}/", table)
        expect(r.returncode == 0, "a run with a partial download succeeds", r)
        expect((f"/voc2007/{name}", f"bytes={len(data) // 2}-") in REQUESTS, "the partial download resumed at its end")
        expect("resuming at byte" in r.stdout, "the resume is said", r)

        # A truncated archive (the server's copy cut short) and a wrong checksum are refused.
        for label, bad in [("truncated", data[: len(data) - 512]), ("wrong checksum", data[:-1] + b"\x01")]:
            bad_dir = os.path.join(tmp, "bad-" + label.replace(" ", "-"))
            os.makedirs(os.path.join(bad_dir, "voc2007"))
            with open(os.path.join(bad_dir, "voc2007", name), "wb") as f:
                f.write(bad)
            server_bad = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                         lambda *a, d=bad_dir: RangeHandler(*a, directory=d))
            threading.Thread(target=server_bad.serve_forever, daemon=True).start()
            out3 = os.path.join(tmp, "out-" + label.replace(" ", "-"))
            only_test = "\n".join(line for line in table.split("\n") if line.startswith(name))
            r = run(out3, f"http://127.0.0.1:{server_bad.server_address[1]}/voc{{year}}/", only_test)
            message = "bytes, expected" if label == "truncated" else "MD5"
            expect(r.returncode != 0 and message in r.stderr and name in r.stderr, f"a {label} archive is refused by name", r)
            expect(not os.path.exists(os.path.join(out3, "VOCdevkit", "VOC2007")), f"a {label} archive is not unpacked")
            expect(os.path.isfile(os.path.join(out3, "downloads", name + ".bad")), f"a {label} archive is kept as .bad")
            server_bad.shutdown()

        # A complete copy the script did not write (no marker) is left alone.
        out4 = os.path.join(tmp, "mine")
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            t.extractall(out4)
        mine = os.path.join(out4, "VOCdevkit/VOC2007/Annotations/000001.xml")
        with open(mine, "w") as f:
            f.write("<annotation>the user's own</annotation>")
        REQUESTS.clear()
        r = run(out4, f"{base}/voc{{year}}/", "\n".join(line for line in table.split("\n") if line.startswith(name)))
        expect(r.returncode == 0 and not REQUESTS, "an existing complete copy is not downloaded again", r)
        with open(mine) as f:
            expect(f.read() == "<annotation>the user's own</annotation>", "an existing copy keeps its files")
        server.shutdown()
    print("get-voc.sh: every case holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
