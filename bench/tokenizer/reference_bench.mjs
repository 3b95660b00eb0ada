// The JavaScript reference for `tessera bench tokenizer`: encodes every line of a JSONL corpus with
// @lenml/tokenizers (single thread, add_special_tokens=true) and prints one JSON object:
// {"seconds", "bytes", "tokens", "checksum"}. Usage: node reference_bench.mjs MODEL_DIR CORPUS.jsonl
// Loads the package from tests/node_modules; timing covers encoding only, not loading.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [modelDir, corpusPath] = process.argv.slice(2);
const require = createRequire(new URL("../../tests/package.json", import.meta.url));
const { TokenizerLoader } = await import(pathToFileURL(require.resolve("@lenml/tokenizers")).href);

const tokenizerJSON = JSON.parse(readFileSync(`${modelDir}/tokenizer.json`, "utf8"));
let tokenizerConfig = {};
try {
  tokenizerConfig = JSON.parse(readFileSync(`${modelDir}/tokenizer_config.json`, "utf8"));
} catch {}
const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const lines = readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
let bytes = 0;
for (const l of lines) bytes += Buffer.byteLength(l);

let tokens = 0, checksum = 0;
const start = process.hrtime.bigint();
for (const l of lines) {
  const ids = tokenizer.encode(l, { add_special_tokens: true });
  tokens += ids.length;
  for (const id of ids) checksum = (checksum * 31 + id) % 1000000007;
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ seconds, bytes, tokens, checksum, node: process.version }));
