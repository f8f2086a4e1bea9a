#!/usr/bin/env bash
# What the sentence encoder adds to the text head on LLMRouter (docs/encoder.md, "Encoder features"):
# held-out AUC per model on the carved validation split of the text head reading TF-IDF, the
# all-MiniLM-L6-v2 embedding, or both, next to the task alone; and the predictor over all features.
#
#   experiments/llmrouter/encoder_auc.sh [OUT_DIR]        (default: runs/llmrouter-encoder)
#
# Environment: CONDUCTOR (binary, default build/bin/conductor), DATA (default ../shared/data),
# ENCODER (sentence-transformers directory, default build/third_party/all-MiniLM-L6-v2, from
# scripts/fetch-encoder.sh), PYTHON (default python3; standard library only). A step whose output
# exists is not run again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONDUCTOR="${CONDUCTOR:-$root/build/bin/conductor}"
DATA="${DATA:-$root/../shared/data}"
ENCODER="${ENCODER:-$root/build/third_party/all-MiniLM-L6-v2}"
PYTHON="${PYTHON:-python3}"
OUT="${1:-$root/runs/llmrouter-encoder}"

[ -x "$CONDUCTOR" ] || { echo "error: conductor binary not found at $CONDUCTOR (build it or set CONDUCTOR)" >&2; exit 1; }
[ -d "$DATA/llmrouter" ] || { echo "error: $DATA/llmrouter is absent: this experiment needs the public LLMRouter data" >&2; exit 1; }
[ -f "$ENCODER/model.safetensors" ] || { echo "error: no encoder at $ENCODER: run scripts/fetch-encoder.sh (or set ENCODER)" >&2; exit 1; }
mkdir -p "$OUT"

# 1. The validation carve and import of run.sh, then the embedding of every query (once).
[ -f "$OUT/llmrouter.h5" ] || {
  "$PYTHON" "$here/carve_validation.py" --format llmrouter --input "$DATA/llmrouter" --out "$OUT/data"
  "$CONDUCTOR" traces import --format llmrouter --input "$OUT/data" --out "$OUT/llmrouter.h5"
}
[ -f "$OUT/llmrouter-emb.h5" ] ||
  "$CONDUCTOR" traces embed --model "$ENCODER" --threads 1 "$OUT/llmrouter.h5" "$OUT/llmrouter-emb.h5"

# 2. The head on each input (fitted on train, AUC on validation), and the task alone.
for input in tfidf embedding both; do
  enc=()
  [ "$input" = tfidf ] || enc=(--encoder "$ENCODER")
  [ -f "$OUT/auc_$input/report.json" ] ||
    "$CONDUCTOR" rewards fit --traces "$OUT/llmrouter-emb.h5" --heldout validation --hash-dim 64 --text \
      --text-input "$input" "${enc[@]}" --report "$OUT/auc_$input"
done
[ -f "$OUT/auc_taskonly/report.json" ] ||
  "$CONDUCTOR" rewards fit --traces "$OUT/llmrouter-emb.h5" --heldout validation --hash-dim 1 --report "$OUT/auc_taskonly"

# 3. The table.
"$PYTHON" - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
def workers(name):
    return json.load(open(f"{out}/{name}/report.json"))["heldout"]["workers"]
inputs = ["tfidf", "embedding", "both"]
head = {i: {w["worker"]: w["text_head_auc"] for w in workers("auc_" + i)} for i in inputs}
pred = {i: {w["worker"]: w["auc"] for w in workers("auc_" + i)} for i in inputs}
task = {w["worker"]: w["auc"] for w in workers("auc_taskonly")}
def within(name):
    v = [t["auc"] for w in workers(name) for t in w["by_task"].values() if t.get("auc") is not None]
    return sum(v) / len(v)
models = list(head["tfidf"])
print("| model | task only | head: TF-IDF | head: embedding | head: both | all features: TF-IDF | all features: embedding | all features: both |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for m in models:
    print(f"| {m} | {task[m]:.3f} | " + " | ".join(f"{head[i][m]:.3f}" for i in inputs) + " | " +
          " | ".join(f"{pred[i][m]:.3f}" for i in inputs) + " |")
mean = lambda d: sum(d.values()) / len(d)
print(f"| **mean** | **{mean(task):.4f}** | " + " | ".join(f"**{mean(head[i]):.4f}**" for i in inputs) + " | " +
      " | ".join(f"**{mean(pred[i]):.4f}**" for i in inputs) + " |")
print(f"| mean within task (all features) | {within('auc_taskonly'):.4f} | | | | " +
      " | ".join(f"{within('auc_' + i):.4f}" for i in inputs) + " |")
EOF
