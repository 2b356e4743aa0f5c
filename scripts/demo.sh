#!/usr/bin/env bash
# The demo: detforge's four uses end to end on the built-in sample, no downloads, on CPU.
#
#   bash scripts/demo.sh [OUT]        (OUT defaults to out/demo; `make demo` runs this)
#
# DETFORGE names the detforge executable (default: the repository's .venv/bin/detforge,
# else `detforge` on PATH). Every command writes only under OUT and replaces or resumes
# its own outputs there, so a rerun works and deletes nothing it did not write. The
# FiftyOne dataset goes to FiftyOne's database (FIFTYONE_DATABASE_URI, else its own).
set -euo pipefail
out=${1:-out/demo}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${DETFORGE:-}" ]; then
  detforge=$DETFORGE
elif [ -x "$repo/.venv/bin/detforge" ]; then
  detforge=$repo/.venv/bin/detforge
elif command -v detforge >/dev/null; then
  detforge=$(command -v detforge)
else
  echo "demo: no detforge executable: run 'make setup', or set DETFORGE" >&2
  exit 1
fi
# the detector's training budget: CPU-smoke size (the tests shorten it further)
pretrain_iters=${DEMO_PRETRAIN_ITERS:-10}
finetune_iters=${DEMO_FINETUNE_ITERS:-10}
started=$SECONDS

step() {
  echo
  echo "== $1"
  shift
  for line in "$@"; do echo "   $line"; done
}

step "1/6 the built-in sample, in the three sources' real on-disk formats" \
  "(Objects365, OpenImages and LVIS files: 40 generated photos, about 100 boxes, planted duplicates)"
"$detforge" sample --out "$out/sample"
"$detforge" read "$out/sample"
step "1/6 the shipped bigdet-v1 taxonomy: coverage of the sample's classes and boxes"
"$detforge" taxonomy validate bigdet-v1 --sources "$out/sample" --subset --boxes
step "1/6 build the merged dataset: map, dedup, decontaminate, split, export, report"
"$detforge" build-dataset bigdet --root "$out/sample" --out "$out/bigdet"

step "2/6 a detector: the pre-training benchmark at CPU-smoke size" \
  "Faster R-CNN with a ResNet-18 backbone from random init, $pretrain_iters iterations on the" \
  "build's train split, then $finetune_iters fine-tuning iterations with and without them, tested" \
  "on the build's val split. Tiny and barely trained: its AP is near 0 and its scores" \
  "are low (kept down to 0.0001); it shows the mechanics, not a detector. Each tested step" \
  "saves its detections as COCO results JSON: finetune/<fraction>/<kind>/predictions.json"
"$detforge" benchmark pretrain "$out/bigdet" \
  --downstream-train "$out/bigdet/coco/train.json" \
  --downstream-val "$out/bigdet/coco/val.json" \
  --downstream-images "$out/bigdet/coco/images" \
  --run "$out/benchmark" --fractions 100 \
  --pretrain-iters "$pretrain_iters" --finetune-iters "$finetune_iters" \
  --backbone-depth 18 --image-scale 320,240 --score-threshold 0.0001 --lr 0.02 --device cpu
predictions=$out/benchmark/finetune/100pct/pretrained/predictions.json

step "3/6 score those predictions: COCO, LVIS-style and federated AP, per source" \
  "predictions.meta.json beside them says their ids are the build's COCO export ids"
"$detforge" evaluate "$out/bigdet" --predictions "$predictions" --split val

step "4/6 probe sets from the merged dataset's boxes and verified labels"
"$detforge" probe generate "$out/bigdet" --out "$out/probes"
step "4/6 a tiny CLIP written offline from a config, loaded back like any local model" \
  "Its weights are RANDOM: the probe numbers below show how the suite runs, not a model"
"$detforge" probe tiny-model --out "$out/tiny-clip" --kind clip
"$detforge" probe run --model "$out/tiny-clip" --probes "$out/probes" \
  --out "$out/probe-run" --data "$out/bigdet"

step "5/6 FiftyOne: the detector's errors and the probe failures as saved views" \
  "--fp-score 0.001: the demo detector's scores are all low, so every false positive is shown"
"$detforge" browse "$out/bigdet" --eval "$out/bigdet/eval/val" --probe-run "$out/probe-run" \
  --name detforge-demo --fp-score 0.001 --no-launch

step "6/6 what 'detforge upload' would publish, with its checks (nothing is sent)"
"$detforge" upload "$out/bigdet" --repo-id your-org/bigdet-sample --dry-run

step "done in $((SECONDS - started)) s; where each result is:"
cat <<EOF
   sample (source formats)     $out/sample
   merged dataset              $out/bigdet  (tables/, coco/, hub/)
   build report                $out/bigdet/report/report.md
   benchmark summary           $out/benchmark/summary.md
   detector predictions        $predictions (+ predictions.meta.json)
   evaluation                  $out/bigdet/eval/val/eval.md (eval.json, matches.parquet)
   probe set                   $out/probes
   tiny VLM (random weights)   $out/tiny-clip
   probe report                $out/probe-run/report.md
   FiftyOne dataset            detforge-demo; open the App with:
     $detforge browse $out/bigdet --eval $out/bigdet/eval/val --probe-run $out/probe-run --name detforge-demo --fp-score 0.001
EOF
