#!/usr/bin/python3
"""Writes sample.jsonl, the texts of the tokenizer golden test (one {"text": ...} per line).

Deterministic: hand-written strings by category, then seeded random strings built only from code
points that Unicode 14.0 (this Python's unicodedata) already assigns, so every engine compared
(utf8proc 15.0, Node's ICU, Oniguruma) knows them.
The "engine_edges" texts hold the characters that the regex engines classify differently (see
docs/tokenizer.md, "Known differences"): U+0085 and U+FEFF (JavaScript's \\s and Oniguruma's \\s
disagree), U+180E (PCRE2's \\s matches it) and U+017F after an apostrophe (HF's case-insensitive
contraction matches 'ſ, the JavaScript port's [sS] does not). On these texts the pieces differ but
no merge crosses the boundary, so the ids agree; the random texts leave these characters out.

usage: /usr/bin/python3 make_sample.py > sample.jsonl
"""
import json
import random
import sys
import unicodedata

S = []  # (category, text)


def add(cat, *texts):
    for t in texts:
        S.append((cat, t))


add("english",
    "Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "It was the best of times, it was the worst of times.",
    "Machine learning models are trained on large datasets.",
    "Please route this query to the cheapest model that can answer it correctly.",
    "What is the capital of Australia?",
    "Prove that the square root of 2 is irrational.",
    "Summarize the following article in three sentences.",
    "e.g. i.e. etc. vs. Mr. Mrs. Dr. St.",
    "U.S.A. and U.K. are abbreviations.",
    "well-known state-of-the-art end-to-end",
    "email me at someone@example.com or visit https://example.org/path?q=1&r=2#frag",
    "Tokenization (the process of splitting text) matters; really!",
    "\"Quoted text\" and 'single quotes' and `backticks`",
    "A sentence... with an ellipsis… and em—dashes – en dashes.",
    "Headings:\n# Title\n## Subtitle\n- item one\n- item two\n",
    "CamelCaseWordsAndsnake_case_words and kebab-case-words",
    "iPhone, eBay, macOS, JavaScript, GitHub, YouTube",
    "The year 2024 was followed by 2025.",
    "She said, \"I'm not sure.\"",
    "Question: Which option is correct? (A) one (B) two (C) three (D) four\nAnswer:",
    "To be, or not to be, that is the question:",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "A",
    "a",
    "Hi",
    " hello",
    "hello ",
    "?!?!?!",
    "...",
    "--",
    "#hashtag @mention $money %percent ^caret &amp *star",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",
    "naïve café résumé coöperate façade jalapeño",
    "Zürich, Köln, São Paulo, Kraków, Reykjavík",
    "fiancée déjà vu crème brûlée",
    "Ordinal numbers: 1st, 2nd, 3rd, 4th, 21st, 102nd",
)

add("python",
    "def add(a, b):\n    return a + b\n",
    "import numpy as np\nimport torch.nn.functional as F\n",
    "class Policy(nn.Module):\n    def __init__(self, hidden: int = 64) -> None:\n        super().__init__()\n",
    "for i in range(10):\n\tif i % 2 == 0:\n\t\tprint(f\"{i} is even\")\n",
    "x = [i**2 for i in range(100) if i % 3]\n",
    "with open('data.json') as f:\n    data = json.load(f)\n",
    "@dataclass(frozen=True)\nclass Config:\n    lr: float = 3e-4\n    gamma: float = 0.99\n",
    "if __name__ == \"__main__\":\n    main()\n",
    "lambda x: x if x > 0 else -x",
    "try:\n    pass\nexcept (ValueError, KeyError) as e:\n    raise RuntimeError(str(e)) from e\n",
    "print('Hello, World!')  # comment",
    "async def fetch(url):\n    async with session.get(url) as r:\n        return await r.text()\n",
    "d = {'a': 1, 'b': [1, 2, 3], 'c': {'d': None}}",
    "    \n    \n    return None\n",
    "assert np.allclose(a @ b, c, atol=1e-6), \"mismatch\"",
    "s = r'\\d+\\.\\d*' + \"\\n\"",
    "def f(*args, **kwargs): ...",
    "# TODO(someone): fix this\n# FIXME\n",
)

add("cpp",
    "#include <iostream>\n\nint main() {\n  std::cout << \"Hello\\n\";\n  return 0;\n}\n",
    "template <typename T>\nT max(T a, T b) { return a > b ? a : b; }\n",
    "std::vector<int32_t> ids;\nids.reserve(n);\n",
    "auto it = m.find(key);\nif (it != m.end()) return it->second;\n",
    "namespace conductor {\nclass BpeTokenizer final : public Base {\n public:\n  explicit BpeTokenizer(int n);\n};\n}  // namespace conductor\n",
    "for (size_t i = 0; i < n; ++i) sum += a[i] * b[i];",
    "#define CHECK(x) do { if (!(x)) abort(); } while (0)",
    "std::unique_ptr<Impl> impl_;",
    "x <<= 2; y >>= 3; z = x && y || !w;",
    "const char* s = R\"(raw string)\";",
    "int main(int argc, char** argv) {\n\treturn argc > 1 ? 0 : 1;\n}",
    "/* block\n * comment\n */",
    "uint64_t h = 0xcbf29ce484222325ULL;",
    "std::map<std::string, std::vector<std::pair<int, double>>> m;",
    "if (a != b) { throw std::runtime_error(\"a != b\"); }",
    "    }\n  }\n}\n",
)

add("json",
    "{\"text\": \"hello\", \"ids\": [1, 2, 3]}",
    "{\n  \"name\": \"conductor\",\n  \"version\": \"0.1.0\",\n  \"private\": true\n}",
    "[{\"a\":1},{\"b\":null},{\"c\":false}]",
    "{\"price\": 0.000015, \"tokens\": 1024, \"latency_ms\": 350.5}",
    "{\"nested\": {\"deep\": {\"deeper\": {\"deepest\": []}}}}",
    "{\"unicode\": \"caf\\u00e9\", \"escaped\": \"line\\nbreak\"}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello!\"}]}",
    "  \"key\": \"value\",\n",
    "{}",
    "[]",
)

add("other_code",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name ORDER BY 2 DESC;",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "$ ls -la /tmp && echo \"done\" | grep -v error > out.txt 2>&1",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
    "const f = (x) => x?.y ?? 0; // JS",
    "\\begin{equation} E = mc^2 \\end{equation}",
    "a:hover { color: #ff0000; margin: 0 auto; }",
    "git commit -m \"fix: handle empty input\"",
    "key: value\nlist:\n  - one\n  - two\n",
    "| col1 | col2 |\n|------|------|\n| a    | b    |\n",
)

add("numbers",
    "0", "7", "42", "123", "2024", "12345", "1234567890",
    "12345678901234567890123456789012345678901234567890",
    "3.14159265358979323846",
    "-273.15",
    "1,000,000",
    "$1.5M and €2,300.00 and £99.99 and ¥10000",
    "+1 (555) 123-4567",
    "2025-07-24T12:34:56Z",
    "1e-10 6.022e23 0x1F 0b1010 0o777",
    "v1.2.3-rc.4+build.5",
    "IPv4 192.168.0.1 and IPv6 2001:db8::1",
    "٠١٢٣٤٥٦٧٨٩ ۰۱۲۳",
    "１２３４５ fullwidth digits",
    "x² + y³ = z⁴, H₂O, ½ ¼ ¾",
    "Ⅰ Ⅱ Ⅲ Ⅻ roman numerals",
    "१२३ ๑๒๓ ① ② ③",
    "100%", "99.9% of 1/3",
    "Pi is approximately 3.1415926535897932384626433832795028841971693993751",
)

add("cjk",
    "你好，世界！",
    "我爱自然语言处理。",
    "今天天气很好，我们去公园散步吧。",
    "机器学习模型需要大量的训练数据。",
    "中文English混合mixed文本text",
    "こんにちは、世界。",
    "私は学生です。東京に住んでいます。",
    "カタカナとひらがなと漢字",
    "ｶﾀｶﾅ half-width katakana",
    "안녕하세요, 세계!",
    "한국어 자연어 처리는 재미있습니다.",
    "「引用」『二重』【括弧】〈角〉《書名》",
    "中文標點：，。！？；：“”‘’（）",
    "数字123和字母abc",
    "𠀀𠀁𪜀 rare ideographs",
    "日本語の文章には句読点があります、ね。",
    "北京是中国的首都",
    "　全角スペース　",
)

add("scripts",
    "مرحبا بالعالم",
    "اللغة العربية جميلة جدا.",
    "السلام عليكم ورحمة الله",
    "كتب الطالب ١٢٣ صفحة",
    "שלום עולם",
    "नमस्ते दुनिया",
    "हिन्दी भाषा बहुत सुन्दर है।",
    "สวัสดีชาวโลก",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Привет, мир!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Γειά σου Κόσμε",
    "Ελληνικά: αβγδεζηθικλμνξοπρστυφχψω",
    "Tiếng Việt có nhiều dấu thanh điệu.",
    "Xin chào thế giới",
    "Բարեւ աշխարհ",
    "გამარჯობა მსოფლიო",
    "ሰላም ልዑል",
    "வணக்கம் உலகம்",
    "ಕನ್ನಡ ತೆಲುగు മലയാളം",
    "Türkçe: İstanbul ılık ışık",
    "Polski: zażółć gęślą jaźń",
    "Ünïcödé ẞ ß ŉ ǆ ǅ",
)

add("emoji",
    "😀",
    "Hello 👋 world 🌍!",
    "🔥🔥🔥",
    "👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
    "👨‍👩‍👧‍👦",
    "👩🏽‍💻 👨🏿‍🚀 🧑🏻‍🔬",
    "🏳️‍🌈 🏴‍☠️",
    "🇫🇷 🇯🇵 🇺🇸 🇧🇷",
    "1️⃣ 2️⃣ #️⃣ *️⃣",
    "❤️ ♥ ☺️ ✌️",
    "I ❤️ NY",
    "🙂🙃😉😊",
    "emoji at end 🚀",
    "🚀 emoji at start",
    "text🎉text",
    "👁️‍🗨️",
    "🧔‍♂️ 👩‍❤️‍💋‍👨",
    "🐕‍🦺🐈‍⬛",
    "©️®️™️",
    "🤷‍♀️🤦🏼‍♂️",
)

add("contractions",
    "DON'T", "We'Ll", "I'M", "it'S", "they'RE", "you'VE", "she'D", "he'll",
    "I don't know what you're talking about, but they'd say it's fine and we've seen it.",
    "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "'x", "'",
    "''s", "'''", "'ll've",
    "O'Neil's dog",
    "rock'n'roll",
    "WE'RE NOT GONNA TAKE IT, WE'VE HAD ENOUGH, YOU'LL SEE",
    "It’s a curly apostrophe’s test",
    "don't DON'T Don't dOn'T",
    "the dog's bone and the dogs' bones",
    "'hello' 'world'",
    "can't won't shan't ain't y'all'd've",
    " 's",
    "'123",
    "'é",
)

add("whitespace",
    "\n", "\n\n", "\n\n\n", "\n\n\n\n\n\n\n\n",
    " ", "  ", "   ", "          ",
    "\t", "\t\t", " \t ",
    "  \n  ", " \n", "\n ", "\n  \n  \n",
    "trailing spaces   ", "   leading spaces", "  both  ",
    "a  b   c    d",
    "line1\nline2\n\nline4\n\n\n",
    "a\r\nb\r\nc",
    "\r\n\r\n",
    "\r",
    "a\n\n\n\nb",
    "x  \n\n  y",
    "word \n",
    "word\t\n\tword",
    "  \t\n\t  end",
    "\u00a0non-breaking\u00a0space",
    "ideographic\u3000space",
    "en\u2002em\u2003thin\u2009hair\u200a",
    "line\u2028separator\u2029paragraph",
    "vertical\u000btab\u000cformfeed",
    "zero\u200bwidth\u200cnon\u200djoiner",
    "\u00a0\u00a0\n",
    " \u3000 ",
    "end with newline\n",
    "tabs\tbetween\twords",
    " ! ",
    "a\n",
    "\n\na",
    "    def indented():\n        pass",
)

add("special_tokens",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "text<|endoftext|>more text",
    "<|im_start|><|im_end|>",
    "<|im_start",
    "<|im_end|",
    "im_end|>",
    "<|IM_END|>",
    "<<|im_end|>>",
    "< |im_end| >",
    "<think>\nreasoning\n</think>\n\nanswer",
    "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "a<|im_end|>b",
    " <|im_end|> ",
    "<|im_end|>\u0338",
    "<|vision_start|><|image_pad|><|vision_end|>",
    "<|object_ref_start|>cat<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|>",
    "<|repo_name|>conductor<|file_sep|>README.md",
    "<tool_response>ok</tool_response>",
    "<|unknown_token|>",
    "<|im_start|>user\n你好<|im_end|>",
)

add("combining",
    "e\u0301",
    "cafe\u0301",
    "A\u030a",
    "\u212b",
    "\u2126",
    "n\u0303o",
    "\u1100\u1161\u11a8",
    "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "q\u0307\u0323",
    "o\u0308\u0304",
    "Tie\u0302\u0301ng Vie\u0323\u0302t",
    "a\u0300\u0301\u0302\u0303\u0304",
    "\u0041\u030a\u0301",
    "\u00c5 vs A\u030a vs \u212b",
    "\u0915\u093c",
    "\u05d1\u05bc",
    "\u1e9b\u0323",
    "i\u0307",
    "e\u0301\u0301\u0301",
    "\u0301 leading combining mark",
    "x\u20d7 vector arrow",
    "a\u0308 o\u0308 u\u0308 A\u0308 O\u0308 U\u0308",
)

add("long",
    "The conductor decides which model to call. " * 20,
    " " * 200,
    "\n" * 100,
    "9" * 300,
    "a" * 500,
    "ab" * 200,
    "=" * 120,
    "-_" * 60,
    ("def f(x):\n    return x * 2\n\n" * 10),
    "🙂" * 50,
    "中文" * 100,
    "x " * 150,
)

add("mixed",
    "Price: $12.99 (was $19.99) — save 35%!",
    "C++ vs. C# vs. F# vs. Objective-C",
    "URL: https://例子.测试/路径?查询=值",
    "Math: ∀x∈ℝ, ∃y: x² + y² ≥ 0 ∧ ¬(x < 0)",
    "Arrows → ← ↑ ↓ ⇒ ⇔ and box ─│┌┐└┘",
    "Currency ₹ ₩ ₽ ₿ ¢",
    "Quotes «guillemets» „German“ ‚single‘",
    "Snowman ☃ and music ♪♫ and chess ♔♕",
    "mixed 日本 English العربية עברית 한국어 русский",
    "1️⃣st place 🥇 for user_123!",
    "tab\tseparated\tvalues\t1\t2",
    "path/to/file.txt C:\\Windows\\System32",
    "<div>不要</div> &lt;escaped&gt;",
    "Hello\u00a0World",
    "",
)


add("engine_edges",
    "a\u0085b", "a \u0085\u0085b", "a\u0085\u0085\u0085", "\u0085 x",
    "x\ufeffy", " \ufeff\ufeffz", "x \ufeff\ufeff", "x\n\ufeff\ufeff",
    "a\u180eb", "a \u180e\u180e b", "a\u180e\u180e\u180e",
    "it'\u017f", "IT'\u017fok", "'\u017ftill",
    "a\u001cb\u001fc",
)

# Seeded random strings from Unicode 14.0 assigned code points.
EXCLUDED = {0x85, 0xFEFF, 0x180E, 0x17F}
RANGES = [
    (0x20, 0x7E), (0xA0, 0x24F), (0x250, 0x2FF), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
    (0x530, 0x58F), (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x10A0, 0x10FF),
    (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x2070, 0x209F), (0x20A0, 0x20CF),
    (0x2100, 0x214F), (0x2150, 0x218F), (0x2190, 0x21FF), (0x2200, 0x22FF), (0x2460, 0x24FF),
    (0x2500, 0x257F), (0x2600, 0x26FF), (0x3000, 0x303F), (0x3040, 0x309F), (0x30A0, 0x30FF),
    (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F),
    (0x1D400, 0x1D7FF), (0x20000, 0x2A6DF), (0xE000, 0xE0FF),
]


def assigned(cp):
    if cp in EXCLUDED:
        return False
    return unicodedata.category(chr(cp)) not in ("Cn", "Cs")


rng = random.Random(20250724)
for i in range(70):
    length = rng.randint(1, 40)
    chars = []
    while len(chars) < length:
        r = rng.random()
        if r < 0.15:
            chars.append(rng.choice([" ", " ", "\n", "\t", "'", "\r\n", "  "]))
            continue
        lo, hi = rng.choice(RANGES)
        cp = rng.randint(lo, hi)
        if assigned(cp):
            chars.append(chr(cp))
    add("random", "".join(chars))

for cat, text in S:
    sys.stdout.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
print(f"{len(S)} texts", file=sys.stderr)
