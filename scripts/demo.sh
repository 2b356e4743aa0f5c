#!/usr/bin/env bash
# The demo: every step of detforge on the built-in sample, no downloads.
set -euo pipefail
out=${1:-out/demo}
detforge=.venv/bin/detforge
rm -rf "$out"
$detforge sample --out "$out/sample"
$detforge read "$out/sample"
