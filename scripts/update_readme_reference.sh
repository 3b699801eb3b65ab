#!/usr/bin/env bash
# Rewrites the config reference table at the end of README.md from `yolo2 config --reference`.
set -euo pipefail
cd "$(dirname "$0")/.."
YOLO2=${YOLO2:-build/yolo2}
table=$("$YOLO2" config --reference)
python3 - "$table" <<'PY'
import sys
path = "README.md"
text = open(path).read()
start = text.index("| key | type | default | meaning |")
open(path, "w").write(text[:start] + sys.argv[1] + "\n")
PY
echo "README.md: config reference updated"
