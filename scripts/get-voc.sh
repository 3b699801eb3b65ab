#!/usr/bin/env bash
# Fetches Pascal VOC as darknet's instructions and ultralytics' VOC.yaml do: VOC2007 trainval and
# test, VOC2012 trainval, unpacked into DIR/VOCdevkit/VOC2007 and DIR/VOCdevkit/VOC2012, where
# configs/voc_*.yaml look (DIR: data/ by default).
#
#   scripts/get-voc.sh [DIR]
#
# - Downloads go to DIR/downloads/<archive>.part and resume where they stopped (HTTP ranges).
# - Mirrors are tried in turn: YOLO2_VOC_MIRRORS (spaces between them; "{year}" in a mirror becomes
#   2007 or 2012), by default the official host, then pjreddie.com (darknet's).
# - Every archive's size and MD5 (torchvision's, the official archives') are checked before it is
#   unpacked; a wrong one is kept as <archive>.bad (for a look) and the next mirror tried; when none
#   serves a right one the script names both values and ends with status 1. A network failure keeps
#   the .part: the next run resumes it.
# - An existing copy is never touched: a VOC folder whose image lists, images and annotations are all
#   there (or that this script unpacked, DIR/VOCdevkit/.get-voc-<archive>) is left as it is, and
#   unpacking (into a staging folder first) never replaces a file that exists.
# YOLO2_VOC_ARCHIVES replaces the table below (lines "archive md5 bytes year folder split"), for tests.
set -euo pipefail

DIR=${1:-data}
MIRRORS=${YOLO2_VOC_MIRRORS:-"http://host.robots.ox.ac.uk/pascal/VOC/voc{year}/ https://pjreddie.com/media/files/"}
ARCHIVES=${YOLO2_VOC_ARCHIVES:-"VOCtrainval_06-Nov-2007.tar c52e279531787c972589f7e41ab4ae64 460032000 2007 VOC2007 trainval
VOCtest_06-Nov-2007.tar b6e924de25625d8de591ea690078ad9f 451020800 2007 VOC2007 test
VOCtrainval_11-May-2012.tar 6cd6e144f989b92b3379bac3b3de84fd 1999639040 2012 VOC2012 trainval"}

say() { echo "get-voc: $*"; }
fail() { echo "get-voc: $*" >&2; exit 1; }
command -v curl >/dev/null || fail "needs curl (apt-get install curl)"
command -v md5sum >/dev/null || fail "needs md5sum (coreutils)"
mkdir -p "$DIR/downloads" "$DIR/VOCdevkit"

# A VOC folder holds a split when its list exists and every listed image and annotation is there.
split_complete() {  # folder split
  local root=$1 list="$1/ImageSets/Main/$2.txt" id
  [ -s "$list" ] || return 1
  while read -r id _ || [ -n "${id:-}" ]; do
    [ -z "$id" ] && continue
    [ -f "$root/JPEGImages/$id.jpg" ] && [ -f "$root/Annotations/$id.xml" ] || return 1
  done < "$list"
}

# Downloads one archive into DIR/downloads/<archive> and checks it, trying each mirror: a network
# failure keeps the .part for the next mirror (or the next run) to resume; a file the mirror calls
# complete but of the wrong size or MD5 becomes <archive>.bad and the next mirror starts afresh.
fetch() {  # archive md5 bytes year
  local name=$1 md5=$2 bytes=$3 year=$4 part="$DIR/downloads/$1.part" have mirror url got problem=""
  [ -f "$DIR/downloads/$name" ] && return 0
  for mirror in $MIRRORS; do
    url="${mirror//\{year\}/$year}$name"
    have=$(stat -c %s "$part" 2>/dev/null || echo 0)
    if [ "$have" -gt "$bytes" ]; then
      fail "$part is $have bytes, more than the $bytes of $name: not a partial download of it (delete it to start over)"
    fi
    if [ "$have" -lt "$bytes" ]; then
      say "$name: from $url$([ "$have" -gt 0 ] && echo " (resuming at byte $have)")"
      if ! curl --fail --location --silent --show-error --retry 3 --connect-timeout 20 -C - -o "$part" "$url"; then
        say "$name: $url did not serve it (the partial download is kept); next mirror"
        continue
      fi
    fi
    got=$(stat -c %s "$part")
    if [ "$got" -ne "$bytes" ]; then
      problem="$got bytes, expected $bytes (a truncated or different file)"
    else
      got=$(md5sum "$part" | cut -d' ' -f1)
      [ "$got" = "$md5" ] && { mv "$part" "$DIR/downloads/$name"; return 0; }
      problem="MD5 $got, expected $md5 (a damaged or different file)"
    fi
    mv "$part" "$DIR/downloads/$name.bad"
    say "$name from $url: $problem; kept as $DIR/downloads/$name.bad"
  done
  [ -n "$problem" ] && fail "$name: $problem; not unpacked (kept as $DIR/downloads/$name.bad)"
  fail "$name: no mirror served it completely (tried: $MIRRORS); run again to resume from $part"
}

# Unpacks into a staging folder first (an interrupted tar leaves nothing half-written in VOCdevkit),
# then moves each file in unless one of that name is already there.
unpack() {  # archive
  local stage="$DIR/downloads/.unpack-$1" f
  rm -rf "$stage" && mkdir -p "$stage"
  tar -x -f "$DIR/downloads/$1" -C "$stage"
  (cd "$stage" && find . -type d -print0) | while IFS= read -r -d '' f; do mkdir -p "$DIR/$f"; done
  (cd "$stage" && find . -type f -print0) | while IFS= read -r -d '' f; do
    [ -e "$DIR/$f" ] || mv "$stage/$f" "$DIR/$f"
  done
  rm -rf "$stage"
}

while read -r name md5 bytes year folder split; do
  [ -z "$name" ] && continue
  root="$DIR/VOCdevkit/$folder"
  marker="$DIR/VOCdevkit/.get-voc-$name"
  if [ -f "$marker" ] || split_complete "$root" "$split"; then
    say "$folder $split: complete in $root, left untouched"
    continue
  fi
  fetch "$name" "$md5" "$bytes" "$year"
  say "$name: size and MD5 right; unpacking into $DIR/VOCdevkit"
  # The archives hold VOCdevkit/<folder>/...; files already there are kept as they are.
  unpack "$name"
  split_complete "$root" "$split" || fail "$name: unpacked, but $root lacks files of its $split list"
  touch "$marker"
  say "$folder $split: ready ($(wc -l < "$root/ImageSets/Main/$split.txt") images)"
done <<< "$ARCHIVES"
say "done: configs/voc_*.yaml read $DIR/VOCdevkit (the archives stay in $DIR/downloads; delete them to save space)"
