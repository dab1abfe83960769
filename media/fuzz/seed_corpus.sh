#!/usr/bin/env bash
# Seeds corpus/probe_decode from the media fixtures (first byte selects the hint:
# 0 none, 6 al, 7 g722; see fuzz_targets/probe_decode.rs), trimmed to 12 KB.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/probe_decode
for f in ../../fixtures/media/*; do
  case "$f" in *.al|*.ul) h=6 ;; *.g722) h=7 ;; *) h=0 ;; esac
  { printf "\\x$(printf %02x $h)"; head -c 12000 "$f"; } > "corpus/probe_decode/$(basename "$f")"
done
