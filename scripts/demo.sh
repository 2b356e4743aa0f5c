#!/usr/bin/env bash
# The demo: every step of detforge on the built-in sample, no downloads.
set -euo pipefail
out=${1:-out/demo}
detforge=.venv/bin/detforge
rm -rf "$out"
echo "== the built-in sample, in the sources' real formats"
$detforge sample --out "$out/sample"
$detforge read "$out/sample"
echo "== the shipped taxonomy against the sample's classes and boxes"
$detforge taxonomy validate bigdet-v1 --sources "$out/sample" --subset --boxes
