#!/usr/bin/env bash
# fixtures.sh SHARED DEST — copies ../shared/fixtures into DEST and decompresses every .xz
# there (once; a stamp file records that it is done). Without the shared folder it does
# nothing: tests then skip (or fail under CI).
set -euo pipefail
src="$1/fixtures"; dest="$2"
[[ -d $src ]] || { echo "fixtures: $src not found; fixture tests will skip"; exit 0; }
stamp="$dest/.pv-done"
[[ -f $stamp && ! $src/files.json -nt $stamp ]] && exit 0
echo "fixtures: decompressing $src into $dest"
mkdir -p "$dest"
cp -r "$src/." "$dest/"
find "$dest" -name '*.xz' -print0 | xargs -0 -r -P "$(nproc)" -n 1 xz -d -f
touch "$stamp"
