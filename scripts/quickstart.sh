#!/usr/bin/env bash
# The main job on the embedded default world, from nothing: install what is missing, build, then
#   1. synthesize the world (seeded; the same one configs/quickstart.yaml trains on),
#   2. train the conductor with PPO (configs/quickstart.yaml, about a minute),
#   3. evaluate it on the test split next to the baselines (report.json, report.md, frontier.svg),
#   4. export it for serving (manifest.json + model.safetensors),
# and print the result. Output goes to runs/quickstart-<UTC time> (or $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh conductor   # only what this script runs; scripts/test.sh builds the rest
C=build/bin/conductor
OUT=${OUT:-runs/quickstart-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

echo "== 1/4 synthesize the world -> $OUT/world.h5"
# Must match env.synthetic in configs/quickstart.yaml (queries 4000, seed 1): eval replays this file.
$C traces synth --out "$OUT/world.h5" --queries 4000 --seed 1
$C traces info "$OUT/world.h5" --split test

echo "== 2/4 train -> $OUT/run"
$C train configs/quickstart.yaml --out "$OUT/run"

echo "== 3/4 evaluate on the test split -> $OUT/eval"
$C eval --checkpoint "$OUT/run" --traces "$OUT/world.h5" --split test --report "$OUT/eval"

echo "== 4/4 export -> $OUT/export"
$C export --checkpoint "$OUT/run" --out "$OUT/export"

echo
echo "Done. Run folder: $OUT/run (config.yaml, metrics.jsonl, TensorBoard events, checkpoints)"
echo "      Report:     $OUT/eval/report.md and frontier.svg"
echo "      Export:     $OUT/export   (serve it: $C serve --export $OUT/export --port 8080)"
