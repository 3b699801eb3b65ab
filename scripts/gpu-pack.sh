#!/usr/bin/env bash
# Pack build-pypi/yolo2 and build-pypi/yolo2_tests with the shared libraries they need that a GPU
# machine lacks into one small archive, gpu-pkg/yolo2-gpu-pkg.tar.xz, for scripts/gpu-check.sh
# (issue 14). Runs on the build machine (Debian 12, where build-pypi/ was built against .torch-pypi/).
#
#   scripts/gpu-pack.sh                 # pack, then verify the unpacked copy (ldd, LD_DEBUG=libs, --help, version)
#   scripts/gpu-pack.sh --no-verify     # pack only
#
# What goes in (gpu-pkg/stage/yolo2-gpu/, then the .tar.xz):
#   bin/yolo2, bin/yolo2_tests        as built (their RUNPATH still names this machine's paths; the
#                                     library path set by gpu-check.sh comes first, see below)
#   lib/                              Debian's libraries they need, each under its SONAME: OpenCV 4.6
#                                     (core, imgproc, imgcodecs, dnn) and its codecs, oneDNN 2.6, OpenBLAS,
#                                     yaml-cpp, spdlog, fmt, pugixml, TBB, protobuf, ...
#   lib/ stubs                        libraries that are linked in but never called on our code paths,
#                                     replaced by a generated stub of the same SONAME (see STUBS below):
#                                     this drops GDAL's, GDCM's and GLX's whole closures (ICU, x265, libheif,
#                                     PROJ, poppler, HDF5, curl, krb5, X11, ...: about 200 MB)
#   MANIFEST                          each file's origin, Debian package and version, stubs' symbol
#                                     counts, the git commit, and the GLIBC/GLIBCXX versions required
# What stays out: the C/C++ runtime every Linux has (glibc's libraries, libstdc++, libgcc_s), and what
# the torch wheel and its nvidia-* wheels hold (LibTorch, c10, CUDA runtime, cuBLAS, cuDNN, NCCL, the
# wheel's libgomp): gpu-check.sh finds those in the GPU machine's torch installation.
#
# Library search order there: LD_LIBRARY_PATH (package lib/, then torch/lib, then nvidia/*/lib) is
# searched BEFORE the binaries' DT_RUNPATH, so the stale build paths in RUNPATH are not used for
# anything those directories hold; the verification below proves that every library resolves from
# the package, the wheel or the base system and none from /usr/lib.
#
# Env: BUILD_DIR (build-pypi), TORCH_ROOT (.torch-pypi: the site-packages holding torch/ and nvidia/),
# PKG_DIR (gpu-pkg), XZ_LEVEL (9).
set -euo pipefail
cd "$(dirname "$0")/.."

VERIFY=1
for a in "$@"; do
  case "$a" in
    --no-verify) VERIFY=0 ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "gpu-pack.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

BUILD_DIR=${BUILD_DIR:-build-pypi}
TORCH_ROOT=${TORCH_ROOT:-.torch-pypi}
PKG_DIR=${PKG_DIR:-gpu-pkg}
XZ_LEVEL=${XZ_LEVEL:-9}
STAGE=$PKG_DIR/stage/yolo2-gpu
TARBALL=$PKG_DIR/yolo2-gpu-pkg.tar.xz

for f in "$BUILD_DIR/yolo2" "$BUILD_DIR/yolo2_tests"; do
  [ -x "$f" ] || { echo "gpu-pack.sh: $f is missing: build it first (scripts/test.sh --torch pypi)" >&2; exit 1; }
done
[ -d "$TORCH_ROOT/torch/lib" ] || { echo "gpu-pack.sh: $TORCH_ROOT/torch/lib is missing (scripts/setup.sh --torch pypi)" >&2; exit 1; }
# A stale build packs stale code: warn when a source is newer than the binaries.
newer=$(find src include tests CMakeLists.txt cmake -type f -newer "$BUILD_DIR/yolo2_tests" 2>/dev/null | head -5)
[ -z "$newer" ] || echo "gpu-pack.sh: WARNING: newer than $BUILD_DIR/yolo2_tests (rebuild first?): $(echo $newer)" >&2
command -v gcc >/dev/null || { echo "gpu-pack.sh: gcc is needed to build the stub libraries" >&2; exit 1; }

# The wheel's library directories, as gpu-check.sh builds them on the GPU machine.
wheel_libpath() {
  local root=$1 p
  p=$(cd "$root" && pwd)/torch/lib
  for d in "$root"/nvidia/*/lib "$root"/nvidia/cu*/lib; do
    [ -d "$d" ] && case ":$p:" in *":$(cd "$d" && pwd):"*) ;; *) p=$p:$(cd "$d" && pwd) ;; esac
  done
  echo "$p"
}
WHEEL_LIBPATH=$(wheel_libpath "$TORCH_ROOT")

rm -rf "$PKG_DIR/stage" "$TARBALL"
mkdir -p "$STAGE/bin" "$STAGE/lib" "$PKG_DIR/stage/stub-src"
cp -p "$BUILD_DIR/yolo2" "$BUILD_DIR/yolo2_tests" "$STAGE/bin/"

# The closure, the stubs and the MANIFEST.
STAGE=$STAGE WHEEL_LIBPATH=$WHEEL_LIBPATH STUB_SRC=$PKG_DIR/stage/stub-src python3 - <<'PY'
import hashlib, os, re, shutil, subprocess, sys

stage, stub_src = os.environ["STAGE"], os.environ["STUB_SRC"]
wheel_dirs = os.environ["WHEEL_LIBPATH"].split(":")
bins = [os.path.join(stage, "bin", b) for b in ("yolo2", "yolo2_tests")]

# glibc's libraries, libstdc++ and libgcc_s: every Linux with a C++ toolchain has them (the GPU
# machine runs g++ 13 and the torch wheel, which need them too).
BASE = {"linux-vdso.so.1", "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1",
        "libpthread.so.0", "libutil.so.1", "libresolv.so.2", "libanl.so.1", "libmvec.so.1",
        "libstdc++.so.6", "libgcc_s.so.1"}
# Linked in through OpenCV, never called by yolo2 (a call aborts with a message naming the function):
STUBS = {
    # imgcodecs' GDAL decoder: only for cv::imread(..., IMREAD_LOAD_GDAL); yolo2 reads with
    # IMREAD_COLOR / imdecode. GDAL brings ~150 MB: ICU, libheif + x265 + aom + dav1d, PROJ, poppler,
    # HDF5, netCDF, SpatiaLite, xerces, curl, OpenSSL, GnuTLS, krb5, LDAP, MariaDB, PostgreSQL, ODBC...
    "libgdal.so.32": "GDAL: OpenCV's GdalDecoder (cv::IMREAD_LOAD_GDAL only)",
    # imgcodecs' DICOM decoder: called only for a file whose bytes 128-131 are "DICM" (its signature
    # check is OpenCV's own code; gdcm::ImageReader runs in readHeader of a DICOM file).
    "libgdcmMSFF.so.3.0": "GDCM: OpenCV's DICOMDecoder (DICOM files only)",
    "libgdcmDSED.so.3.0": "GDCM: OpenCV's DICOMDecoder (DICOM files only)",
    # opencv_core's OpenGL interop (cv::ogl::*, cv::ocl::initializeContextFromGL): pulls X11 and xcb.
    "libGLX.so.0": "GLX: OpenCV's OpenGL interop (cv::ogl, never used)",
}

# Stub functions that return instead of aborting: called when the library is merely set up, and void.
# OpenCV's codec registry (ImageCodecInitializer, at the first imread/imwrite/imdecode/imencode)
# constructs a GdalDecoder, whose constructor calls GDALAllRegister(); its signature check (NITF,
# DTED) is OpenCV's own code, so with registration a no-op nothing else of GDAL runs.
NOOPS = {"GDALAllRegister"}

def run(*cmd, env=None):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout

def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", run("readelf", "-dW", path))

def soname(path):
    m = re.search(r"\(SONAME\)\s+Library soname: \[(.*)\]", run("readelf", "-dW", path))
    return m.group(1) if m else os.path.basename(path)

# Where each SONAME comes from on this machine, with the wheel first (as on the GPU machine).
env = dict(os.environ, LD_LIBRARY_PATH=":".join(wheel_dirs))
where = {}
for b in bins:
    for line in run("ldd", b, env=env).splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        d = re.match(r"\s*(/\S+) \(0x", line)  # the dynamic loader
        if d:
            where[os.path.basename(d.group(1))] = os.path.realpath(d.group(1))
        elif m:
            if m.group(2) == "not":
                sys.exit(f"gpu-pack.sh: {b}: {m.group(1)} not found on this machine")
            where[m.group(1)] = os.path.realpath(m.group(2))
wheel_sonames = {f for d in wheel_dirs if os.path.isdir(d) for f in os.listdir(d)}

def kind(name):
    if name in BASE: return "base"
    if name in wheel_sonames: return "wheel"
    if name in STUBS: return "stub"
    return "real"

# The libraries loaded once the stubs replace their libraries: descend everything but the stubs.
final, todo = {}, [n for b in bins for n in needed(b)]
while todo:
    n = todo.pop()
    if n in final: continue
    if n not in where and n not in BASE:
        sys.exit(f"gpu-pack.sh: {n} is needed but ldd did not resolve it")
    final[n] = kind(n)
    if final[n] != "stub" and n in where:
        todo += needed(where[n])

def dynsyms(path):
    """(defined: {name: (type, size, bind)}, undefined strong names) of a dynamic symbol table."""
    defined, undef = {}, set()
    for line in run("readelf", "--dyn-syms", "-W", path).splitlines():
        p = line.split()
        if len(p) < 8 or not p[0].rstrip(":").isdigit(): continue
        _, _, size, typ, bind, vis, ndx, name = p[:8]
        name = name.split("@")[0]
        if not name: continue
        if ndx == "UND":
            if bind == "GLOBAL": undef.add(name)
        elif bind in ("GLOBAL", "WEAK", "UNIQUE") and vis != "HIDDEN":
            size = int(size, 16) if size.startswith("0x") else int(size)
            defined.setdefault(name, (typ, size, bind))
    return defined, undef

objs = {os.path.basename(b): b for b in bins}
objs.update({n: where[n] for n, k in final.items() if k != "stub" and n in where})
syms = {n: dynsyms(p) for n, p in objs.items()}

# Copy the real libraries under their SONAME.
for n, k in sorted(final.items()):
    if k == "real":
        shutil.copy2(where[n], os.path.join(stage, "lib", n))

# Each stub defines what the loaded objects that need it take from the real library and no other
# loaded object defines (a symbol defined elsewhere too resolves there: the stub must not interpose).
stub_report = {}
for s in sorted(n for n, k in final.items() if k == "stub"):
    real_defined, _ = dynsyms(where[s])
    users = [n for n in objs if s in needed(objs[n])]
    wanted = set().union(*(syms[u][1] for u in users)) & set(real_defined)
    elsewhere = {x for n in objs for x in syms[n][0]}
    names = sorted(wanted - elsewhere)
    src = [
        "/* Generated by scripts/gpu-pack.sh: stub of %s (%s). */" % (s, STUBS[s]),
        "extern long write(int, const void*, unsigned long) __asm__(\"write\");",
        "extern void abort(void) __asm__(\"abort\");",
        "static void yolo2_stub_die(const char* what, unsigned long n) {",
        "  static const char a[] = \"yolo2 GPU package: %s is a stub (scripts/gpu-pack.sh); called: \";" % s,
        "  write(2, a, sizeof a - 1); write(2, what, n); write(2, \"\\n\", 1); abort();",
        "}",
    ]
    counts = {"functions": 0, "objects": 0}
    for i, name in enumerate(names):
        typ, size, bind = real_defined[name]
        weak = " __attribute__((weak))" if bind == "WEAK" else ""
        if typ in ("FUNC", "IFUNC") and name in NOOPS:
            src.append('void yolo2_f%d(void) __asm__("%s")%s;' % (i, name, weak))
            src.append('void yolo2_f%d(void) { }  /* a no-op: see NOOPS in gpu-pack.sh */' % i)
            counts["functions"] += 1
        elif typ in ("FUNC", "IFUNC"):
            src.append('void yolo2_f%d(void) __asm__("%s")%s;' % (i, name, weak))
            src.append('void yolo2_f%d(void) { yolo2_stub_die("%s", %d); }' % (i, name, len(name)))
            counts["functions"] += 1
        else:  # OBJECT, TLS, NOTYPE: zeroed storage of the real size
            tls = "__thread " if typ == "TLS" else ""
            src.append('%sunsigned char yolo2_o%d[%d] __asm__("%s") __attribute__((aligned(32)))%s;'
                       % (tls, i, max(size, 8), name, weak))
            counts["objects"] += 1
    c = os.path.join(stub_src, s + ".c")
    with open(c, "w") as f:
        f.write("\n".join(src) + "\n")
    run("gcc", "-shared", "-fPIC", "-O1", "-fno-builtin", "-w", "-Wl,-soname," + s, "-o",
        os.path.join(stage, "lib", s), c)
    stub_report[s] = (counts, users)

# Every strong undefined symbol of every loaded object must resolve somewhere (BIND_NOW libraries
# fail at load time otherwise): check it against the final set, stubs included.
defined_all = set()
for n in objs: defined_all |= set(syms[n][0])
for s in stub_report: defined_all |= set(dynsyms(os.path.join(stage, "lib", s))[0])
missing = {}
for n in objs:
    for x in syms[n][1] - defined_all:
        missing.setdefault(n, []).append(x)
if missing:
    for n, xs in missing.items():
        print(f"gpu-pack.sh: {n}: {len(xs)} undefined symbol(s) with no definition: {sorted(xs)[:5]}",
              file=sys.stderr)
    sys.exit(1)

# GLIBC / GLIBCXX / CXXABI versions the packaged files need from the GPU machine's base system.
req = {}
for f in sorted(os.listdir(os.path.join(stage, "lib"))) + ["../bin/yolo2", "../bin/yolo2_tests"]:
    for v in re.findall(r"Name: ((?:GLIBC|GLIBCXX|CXXABI)_[0-9.]+)", run("readelf", "-VW", os.path.join(stage, "lib", f))):
        fam, ver = v.split("_", 1)
        t = tuple(int(x) for x in ver.split("."))
        if t > req.get(fam, ()): req[fam] = t

def pkg_of(path):
    try:
        try:
            p = run("dpkg", "-S", path).split(":")[0]
        except subprocess.CalledProcessError:  # usrmerge: dpkg knows /lib/... for some
            p = run("dpkg", "-S", re.sub(r"^/usr/lib/", "/lib/", path)).split(":")[0]
        return p + " " + run("dpkg-query", "-W", "-f=${Version}", p)
    except Exception:
        return "?"

def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]

git = lambda *a: subprocess.run(("git",) + a, capture_output=True, text=True).stdout.strip()
with open(os.path.join(stage, "MANIFEST"), "w") as m:
    m.write("# yolo2 GPU package (scripts/gpu-pack.sh)\n")
    m.write(f"commit {git('rev-parse', 'HEAD')}{' (working tree modified)' if git('status', '--porcelain', '--untracked-files=no') else ''}\n")
    tv = os.path.join(os.path.dirname(wheel_dirs[0]), "version.py")
    tv = re.search(r"__version__ = '([^']*)'", open(tv).read()).group(1) if os.path.exists(tv) else "?"
    m.write(f"built against torch {tv}\n")
    for fam in ("GLIBC", "GLIBCXX", "CXXABI"):
        if fam in req: m.write(f"requires {fam}_{'.'.join(map(str, req[fam]))}\n")
    for b in bins:
        m.write(f"bin/{os.path.basename(b)} sha256:{sha(b)}\n")
    for n, k in sorted(final.items(), key=lambda kv: (kv[1], kv[0])):
        if k == "real":
            m.write(f"lib/{n} real {where[n]} ({pkg_of(where[n])})\n")
        elif k == "stub":
            counts, users = stub_report[n]
            m.write(f"lib/{n} STUB of {where[n]} ({pkg_of(where[n])}): {counts['functions']} functions, "
                    f"{counts['objects']} objects, for {', '.join(sorted(users))}; {STUBS[n]}\n")
        else:
            m.write(f"-   {n} {k}: from the GPU machine ({'its torch wheel' if k == 'wheel' else 'base system'})\n")
print("gpu-pack.sh: %d real libraries, %d stubs, %d from the wheel, %d from the base system"
      % tuple(sum(1 for k in final.values() if k == x) for x in ("real", "stub", "wheel", "base")))
for s, (counts, users) in stub_report.items():
    print(f"  stub {s}: {counts['functions']} functions, {counts['objects']} objects (for {', '.join(sorted(users))})")
print("  requires " + ", ".join(f"{f}_{'.'.join(map(str, v))}" for f, v in sorted(req.items())))
PY

tar -C "$PKG_DIR/stage" --owner=0 --group=0 --numeric-owner -cf - yolo2-gpu |
  xz -T1 --x86 --lzma2=preset="$XZ_LEVEL" >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
echo "gpu-pack.sh: $TARBALL: $(du -b "$TARBALL" | cut -f1) bytes compressed, $(du -sb "$STAGE" | cut -f1) bytes unpacked"

# What the device tool would send: tracked + untracked-not-ignored files, and the tarball (carried).
tree_bytes=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$((tree_bytes + $(du -b "$TARBALL" | cut -f1)))
echo "gpu-pack.sh: working tree $tree_bytes bytes + package = $total bytes ($((total * 100 / 67108864))% of the 64 MiB limit)"

if [ "$VERIFY" = 1 ]; then
  # Unpack into a fresh directory and load everything with ONLY the package and the wheel on the
  # library path; every library must come from there or from the base system.
  tmp=$(mktemp -d /tmp/yolo2-gpu-verify.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  tar -C "$tmp" -xJf "$TARBALL"
  pkg=$tmp/yolo2-gpu
  export LD_LIBRARY_PATH=$pkg/lib:$WHEEL_LIBPATH
  wheel_re=$(echo "$WHEEL_LIBPATH" | sed 's/[.]/[.]/g; s/:/|/g')
  base_re='/(ld-linux-x86-64|libc|libm|libdl|librt|libpthread|libutil|libresolv|libstdc\+\+|libgcc_s)\.so[.0-9]*$'
  bad=0
  for b in yolo2 yolo2_tests; do
    # ldd lists where each library resolves; LD_DEBUG=libs shows the search itself (kept as evidence).
    ldd "$pkg/bin/$b" >"$tmp/$b.ldd"
    LD_BIND_NOW=1 LD_DEBUG=libs "$pkg/bin/$b" --help >/dev/null 2>"$tmp/$b.ld" || { echo "gpu-pack.sh: $b --help failed:"; tail "$tmp/$b.ld"; bad=1; }
    if grep -q "not found" "$tmp/$b.ldd"; then grep "not found" "$tmp/$b.ldd"; bad=1; fi
    np=0 nw=0 nb=0
    while read -r lib; do
      case "$lib" in "$pkg"/lib/*) np=$((np + 1)); continue ;; esac
      if echo "$lib" | grep -Eq "^($wheel_re)/"; then nw=$((nw + 1)); continue; fi
      if echo "$lib" | grep -Eq "$base_re"; then nb=$((nb + 1)); continue; fi
      echo "gpu-pack.sh: $b loads $lib from outside the package, the wheel and the base system"
      bad=1
    done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' "$tmp/$b.ldd" | sort -u)
    echo "gpu-pack.sh: $b: $np libraries from the package, $nw from the wheel, $nb from the base system"
    # The loader's own account: every file it opened ("trying file=" that succeeded is the one before
    # the next search); none may be under /usr/lib or /lib except the base system.
    sed -n 's/^ *[0-9]*: *calling init: //p' "$tmp/$b.ld" | grep -E '^/(usr/)?lib' | grep -Ev "$base_re" |
      sed "s/^/gpu-pack.sh: $b initialises a system library: /" | grep . && bad=1
  done
  "$pkg/bin/yolo2" version | sed 's/^/  /'
  [ "$bad" = 0 ] || { echo "gpu-pack.sh: verification FAILED" >&2; exit 1; }
  echo "gpu-pack.sh: verified: every library resolves from the package, the wheel or the base system"
fi
