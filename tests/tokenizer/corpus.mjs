// The tokenizer parity and benchmark corpus, generated deterministically (seeded PRNG, no downloads):
// English, code, CJK, Arabic, emoji and ZWJ sequences, long whitespace runs, digits, special-token
// strings inside text, and random printable strings. `node corpus.mjs OUT.jsonl [--bytes N]` writes
// one JSON string per line; the parity test imports buildCorpus().

import { writeFileSync } from "node:fs";

// Mulberry32: a small, fixed PRNG so every run builds the same corpus.
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIXED = [
  "Hello, world! This is a test of the tokenizer.",
  "The quick brown fox jumps over the lazy dog. I'm sure you'll agree it's fine; we've done it, they'd say.",
  "SHE'S HERE, WE'RE READY, YOU'VE GOT IT, I'M IN, WE'LL SEE, HE'D KNOW. It'S mIxEd.",
  "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
  "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
  "const x = {a: 1, b: [2, 3], c: \"four\"}; // comment\nfor (let i = 0; i < 10; ++i) { console.log(i); }",
  "SELECT id, name FROM users WHERE age >= 21 AND name LIKE '%smith%' ORDER BY id DESC;",
  "<html><body><div class=\"x\">Text &amp; more</div></body></html>",
  "人工智能是计算机科学的一个分支，它企图了解智能的实质。",
  "今日はいい天気ですね。カタカナとひらがなと漢字が混ざっています。",
  "한국어 문장도 포함합니다. 안녕하세요!",
  "مرحبا بالعالم! هذه جملة باللغة العربية مع أرقام ١٢٣٤٥ و 67890.",
  "שלום עולם, זה טקסט בעברית.",
  "Привет, мир! Это тест на русском языке. Ёжик.",
  "Ελληνικά: Γειά σου Κόσμε. हिन्दी: नमस्ते दुनिया। ไทย: สวัสดีชาวโลก",
  "Emoji: 😀😃😄 👍🏽 ❤️ 🇺🇸 🇯🇵 👨‍👩‍👧‍👦 👩🏻‍💻 🏳️‍🌈 🧑‍🤝‍🧑 ✊🏿",
  "Family: 👨‍👨‍👧‍👧 and flags 🏴‍☠️ 🇬🇧🇫🇷, keycaps 1️⃣ #️⃣, and text ☺︎ vs ☺️.",
  "Numbers: 0 1 12 123 1234 12345 123456 1234567 3.14159 2,718,281 1e-9 0xDEADBEEF ½ ² ٣ ४",
  "Phone 555-0123, date 2024-12-31T23:59:59Z, price $1,299.99, 50% off!!!",
  "     leading spaces and trailing spaces     ",
  "tabs\t\t\tand\tmore\ttabs\t",
  "new\nlines\n\n\nand\r\nwindows\r\n\r\nendings\n",
  "mixed \t \n \r\n \u00a0 \u3000 \u2009 whitespace \u2028 line sep \u2029 para",
  " ".repeat(100) + "x" + " ".repeat(37),
  "\n".repeat(50) + "end",
  "\t".repeat(33) + "tabbed" + "\t \t \t",
  "a".repeat(300) + " " + "ab".repeat(150),
  "Special tokens inside text: <|im_start|>user\nhi<|im_end|> <|endoftext|> <s> </s> <unk>",
  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>",
  "<｜begin▁of▁sentence｜>You are helpful<｜User｜>Hello<｜Assistant｜>Hi<｜end▁of▁sentence｜>",
  "<tool_call>{\"name\": \"f\"}</tool_call> <|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
  "<|im_start|><|im_start|>x<|im_end|><|im_end|>",
  "Accents: café naïve résumé coöperate Ångström; decomposed: cafe\u0301 n\u0303 A\u030a; Hangul jamo: \u1100\u1161\u11a8",
  "Ligatures and compat: ﬁ ﬂ ① ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ™ ℃ ㎞",
  "Zero-width: a\u200bb\u200cc\u200dd\u2060e, soft\u00adhyphen, bidi \u202eevil\u202c",
  "Math: ∀x ∈ ℝ, ∃y: x² + y² = 1 ⇒ |x| ≤ 1; ∑ᵢ aᵢ ≠ ∏ⱼ bⱼ",
  "Quotes: “smart” ‘single’ «guillemets» „low“ — en–dash … ellipsis",
  "Contractions: don't won't can't shouldn't y'all ma'am o'clock 'quoted' ''double''",
  "URLs: https://example.com/path?q=1&r=two#frag mailto:a@b.co ftp://x.y/z",
  "Markdown: # Title\n\n* item one\n* item two\n\n```python\nprint('x')\n```\n| a | b |\n|---|---|",
  "",
  " ",
  "a",
  "123",
  "!!!???...,,,;;;:::",
];

const WORDS = (
  "the of and to in is was for on that with as by at it from be this have are or an not which but " +
  "model token server request latency throughput batch cache memory kernel tensor layer attention " +
  "数据 模型 服务器 推理 中文 日本語 テスト 한국어 عربي كلمة Ελλάδα мир данные ñandú façade"
).split(" ");

// Random code points come from blocks fully assigned by Unicode 14: PCRE2 10.42 (Debian 12) classifies
// \p{S}, \p{L}, ... with Unicode 14 tables, HF tokenizers' Oniguruma with Unicode 15 and node's ICU with
// a newer one, so characters assigned later (e.g. U+1FA77 pink heart) split differently under the
// DeepSeek V3 pattern's [\p{P}\p{S}] class. See tokenizer/README.md.
const CODE_POINTS = [
  [0x20, 0x7e], [0xa0, 0x17f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff],
  [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x20a0, 0x20cf], [0x2100, 0x22ff],
  [0x3000, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xff00, 0xffef], [0x1f300, 0x1f64f], [0x1f680, 0x1f6c5],
  [0x0300, 0x036f], [0x10000, 0x1007f], [0x20000, 0x2a6df],
];
const SPECIAL_SNIPPETS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<|eot_id|>",
  "<｜User｜>", "<｜Assistant｜>", "<tool_call>", "<|begin_of_text|>", "<unk>"];
const WS = [" ", "  ", "\t", "\n", "\r\n", "\n\n", "   \n", " \t ", "\u00a0", "\u3000"];

function randomPrintable(next, len) {
  let s = "";
  for (let i = 0; i < len; ++i) {
    const r = next();
    if (r < 0.35) {
      s += String.fromCodePoint(0x20 + Math.floor(next() * 95));
    } else if (r < 0.45) {
      s += WS[Math.floor(next() * WS.length)];
    } else if (r < 0.5) {
      s += SPECIAL_SNIPPETS[Math.floor(next() * SPECIAL_SNIPPETS.length)];
    } else {
      const [lo, hi] = CODE_POINTS[Math.floor(next() * CODE_POINTS.length)];
      s += String.fromCodePoint(lo + Math.floor(next() * (hi - lo + 1)));
    }
  }
  return s;
}

function randomProse(next, words) {
  const out = [];
  for (let i = 0; i < words; ++i) {
    let w = WORDS[Math.floor(next() * WORDS.length)];
    const r = next();
    if (r < 0.08) w = w[0].toUpperCase() + w.slice(1);
    else if (r < 0.12) w += [",", ".", "!", "?", ":", ";"][Math.floor(next() * 6)];
    else if (r < 0.15) w = String(Math.floor(next() * 1e6));
    else if (r < 0.17) w += "\n";
    out.push(w);
  }
  return out.join(" ");
}

// `randomCount` random printable strings and as many random prose lines, after the fixed texts.
export function buildCorpus({ seed = 1234, randomCount = 300 } = {}) {
  const next = rng(seed);
  const texts = [...FIXED];
  for (let i = 0; i < randomCount; ++i) texts.push(randomPrintable(next, 1 + Math.floor(next() * 80)));
  for (let i = 0; i < randomCount; ++i) texts.push(randomProse(next, 5 + Math.floor(next() * 60)));
  return texts;
}

// About `bytes` UTF-8 bytes of mixed text (for the benchmark): the corpus repeated with fresh
// random lines until the size is reached.
export function buildSizedCorpus(bytes, seed = 99) {
  const next = rng(seed);
  const texts = [];
  let total = 0;
  const base = buildCorpus({ seed });
  while (total < bytes) {
    for (const t of base) {
      texts.push(t);
      total += Buffer.byteLength(t);
    }
    for (let i = 0; i < 200 && total < bytes; ++i) {
      const t = randomProse(next, 50 + Math.floor(next() * 200));
      texts.push(t);
      total += Buffer.byteLength(t);
    }
  }
  return texts;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2];
  const bi = process.argv.indexOf("--bytes");
  const texts = bi > 0 ? buildSizedCorpus(Number(process.argv[bi + 1])) : buildCorpus();
  writeFileSync(out, texts.map((t) => JSON.stringify(t)).join("\n") + "\n");
}
