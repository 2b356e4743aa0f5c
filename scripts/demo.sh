#!/usr/bin/env bash
# The demo: detforge end to end on the built-in sample, no downloads.
set -euo pipefail
out=${1:-out/demo}
detforge=.venv/bin/detforge
rm -rf "$out"
echo "== 1. the built-in sample, written in the sources' real on-disk formats"
$detforge sample --out "$out/sample"
$detforge read "$out/sample"
echo "== 2. the shipped bigdet-v1 taxonomy: coverage of the sample's classes and boxes"
$detforge taxonomy validate bigdet-v1 --sources "$out/sample" --subset --boxes
echo "== 3. build the merged dataset (map, dedup, decontaminate, split, export, report)"
$detforge build-dataset bigdet --root "$out/sample" --out "$out/bigdet"
echo "== 4. probe sets generated from the merged dataset's boxes and verified labels"
$detforge probe generate "$out/bigdet" --out "$out/probes"
echo "== 5. what 'detforge upload' would publish, with its checks (nothing is sent)"
$detforge upload "$out/bigdet" --repo-id your-org/bigdet-sample --dry-run
