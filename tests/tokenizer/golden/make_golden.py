"""Golden ids of the real Qwen3 tokenizer from the ecosystem's own implementation, HF `tokenizers`.

    PY=$(bash scripts/pyref.sh | tail -1)/bin/python          # tokenizers 0.23.3 (pinned there)
    $PY tests/tokenizer/golden/make_golden.py ../shared/data/qwen3-tokenizer/tokenizer.json tests/tokenizer/golden

Reads sample.jsonl (the hand-picked varied texts, make_sample.py) and writes
  expected.jsonl   {"ids": [...]} for each line of sample.jsonl
  generated.jsonl  {"text": ..., "ids": [...]}: 2,000 seeded strings made here, in four families of 500:
                   random Unicode (assigned code points of every script, marks, emoji, digits, spaces),
                   source code (Python, C++, JavaScript, SQL, shell, JSON, with tabs and CRLF),
                   long whitespace runs (spaces, tabs, newlines, NBSP, ideographic space, up to 200),
                   every added token (<|im_start|>, <think>, ...) inside text: glued to words,
                   repeated, adjacent, split in half, in code.
ids are `Tokenizer.encode(text, add_special_tokens=False).ids` (Qwen adds no BOS), the format of
`conductor tokenizer encode`. Deterministic: rerunning writes the same bytes. The tests read the files;
they never run Python.
"""
import hashlib
import json
import os
import random
import sys
import unicodedata

import tokenizers

SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"

# Unicode blocks to draw from (start, end): Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Devanagari,
# Bengali, Thai, Georgian, Hangul Jamo, general punctuation, currency, letterlike, arrows, math,
# box drawing, CJK punctuation, Hiragana, Katakana, CJK ideographs, Hangul syllables, fullwidth forms,
# combining marks, emoji and symbols, mathematical alphanumerics (astral).
BLOCKS = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x530, 0x58F),
          (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F), (0x980, 0x9FF), (0xE00, 0xE7F), (0x10A0, 0x10FF),
          (0x1100, 0x11FF), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2190, 0x21FF),
          (0x2200, 0x22FF), (0x2500, 0x257F), (0x3000, 0x303F), (0x3040, 0x309F), (0x30A0, 0x30FF),
          (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF),
          (0x1D400, 0x1D7FF), (0x1F1E6, 0x1F1FF)]
# Characters whose class the regex engines disagree on (docs/tokenizer.md "Known differences") are
# covered by sample.jsonl's engine_edges texts; here they are left out of the random draws.
SKIP = {0x85, 0xFEFF, 0x180E, 0x17F, 0x2028, 0x2029}


def assigned(cp):
    return cp not in SKIP and unicodedata.category(chr(cp)) not in ("Cn", "Cs", "Co")


def rand_unicode(r):
    out = []
    for _ in range(r.randint(1, 60)):
        a, b = r.choice(BLOCKS)
        cp = r.randint(a, b)
        if assigned(cp):
            out.append(chr(cp))
        if r.random() < 0.15:
            out.append(r.choice([" ", "  ", "\n", "\t", " 12", "3.14", "'s", "'LL", "!", "?"]))
    return "".join(out)


CODE_LINES = [
    "def f(x):", "    return x * 2", "class Node:", "    def __init__(self, v): self.v = v",
    "for i in range(10):", "\tprint(i, end='')", "if (a && b || !c) {", "  std::vector<int> v{1, 2, 3};",
    "}", "#include <iostream>", "int main(int argc, char** argv) {", "    return 0;",
    "const x = await fetch(`/api/${id}`);", "let arr = [...a, ...b].map(x => x ** 2);",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;", "echo \"$HOME\" | grep -E '^/r' && ls -la",
    '{"key": [1, 2.5e-3, null, true], "s": "\\u00e9"}', "x += 1  # comment", "/* block */ // line",
    "    elif x == 0x1F: pass", "lambda a, b: (a, b)", "a[i][j] = b[j][i];", "printf(\"%d\\n\", n);",
    "fn main() -> Result<(), Box<dyn Error>> {", "    let s: &str = \"héllo\";", "<div class=\"a\">&amp;</div>",
    "$ pip install torch==2.11.0", "git commit -m 'fix: off-by-one'", "    ", "\t\t", "",
]


def rand_code(r):
    lines = [r.choice(CODE_LINES) for _ in range(r.randint(1, 8))]
    sep = r.choice(["\n", "\n", "\r\n", "\n\n"])
    indent = r.choice(["", "    ", "\t", "  "])
    return sep.join(indent * r.randint(0, 2) + l for l in lines)


SPACES = [" ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", "\v", "\f"]
WORDS = ["hello", "world", "x", "42", "数据", "Привет", "λ", "!", "def", "<", "a b", "'s"]


def rand_whitespace(r):
    out = []
    for _ in range(r.randint(1, 4)):
        n = r.choice([1, 2, 3, 5, 8, 16, 33, 64, 100, 200])
        pool = r.sample(SPACES, r.randint(1, 3))
        out.append("".join(r.choice(pool) for _ in range(n)))
        if r.random() < 0.8:
            out.append(r.choice(WORDS))
    return "".join(out)


def rand_added(r, added):
    parts = []
    for _ in range(r.randint(1, 6)):
        t = r.choice(added)
        kind = r.randint(0, 6)
        if kind == 0:
            parts.append(t)
        elif kind == 1:
            parts.append(r.choice(WORDS) + t + r.choice(WORDS))      # glued to words
        elif kind == 2:
            parts.append(t * r.randint(2, 4))                        # repeated
        elif kind == 3:
            parts.append(t + r.choice(added))                        # adjacent to another
        elif kind == 4:
            h = len(t) // 2
            parts.append(t[:h] + " " + t[h:])                        # split: not the token
        elif kind == 5:
            parts.append(t[:-1])                                      # truncated: not the token
        else:
            parts.append(rand_code(r).replace("\n", "\n" + t, 1))    # inside code
        parts.append(r.choice(["", " ", "\n", "user\n", " hi ", "\t"]))
    return "".join(parts)


def main(tokenizer_path, out_dir):
    data = open(tokenizer_path, "rb").read()
    got = hashlib.sha256(data).hexdigest()
    if got != SHA256:
        sys.exit(f"{tokenizer_path}: sha256 {got}, expected {SHA256}")
    tok = tokenizers.Tokenizer.from_str(data.decode("utf-8"))
    added = [a["content"] for a in json.loads(data)["added_tokens"]]

    def ids(text):
        return tok.encode(text, add_special_tokens=False).ids

    with open(os.path.join(out_dir, "sample.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    with open(os.path.join(out_dir, "expected.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for t in texts:
            f.write(json.dumps({"ids": ids(t)}, separators=(",", ":")) + "\n")

    r = random.Random(2026)
    gen = ([rand_unicode(r) for _ in range(500)] + [rand_code(r) for _ in range(500)] +
           [rand_whitespace(r) for _ in range(500)] + [rand_added(r, added) for _ in range(500)])
    missing = [a for a in added if not any(a in g for g in gen[1500:])]
    if missing:
        sys.exit(f"added tokens not covered: {missing}")
    with open(os.path.join(out_dir, "generated.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for t in gen:
            f.write(json.dumps({"text": t, "ids": ids(t)}, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"tokenizers {tokenizers.__version__}: {len(texts)} sample ids, {len(gen)} generated texts "
          f"({sum(len(g) for g in gen)} characters, all {len(added)} added tokens inside text)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
