// Random expression and statement templates for the parity test: a seeded generator over the
// Jinja subset (literals, variables, operators, filters, tests, members, slices, methods, loops),
// so that parity covers combinations no hand-written case lists. Exported: randomCases(n, seed).

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const randomContext = {
  i: 3, j: -2, z: 0, f: 1.5, g: -0.25, s: "Hello World", e: "", u: "ünï 😀 ß", ws: "  a b\n",
  l: [1, 2, 3], ls: ["b", "a", "C"], le: [], d: { a: 1, b: "x", c: [1, 2] }, de: {}, n: null, t: true, ff: false,
  msgs: [{ role: "user", content: "hi" }, { role: "assistant", content: " yo " }],
};

export function randomCases(count, seed) {
  const r = rng(seed);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const vars = Object.keys(randomContext).concat(["missing"]);
  const strings = ["'a'", "'abc'", "\"x y\"", "''", "'é😀'", "'\\n'", "'A,b,,c'", "' pad '", "'1'", "'2.5'", "'</think>'"];
  const numbers = ["0", "1", "2", "-1", "7", "1.5", "0.1", "-2.5", "10", "3"];
  const filtersNoArg = ["trim", "upper", "lower", "length", "title", "capitalize", "first", "last", "reverse", "sort",
    "join", "string", "int", "float", "abs", "list", "unique", "tojson", "items", "safe", "indent", "dictsort"];
  const filtersArgs = ["join(', ')", "default('D')", "default('D', true)", "tojson(indent=2)", "replace('a', 'X')",
    "int(9)", "sort(reverse=true)", "map(attribute='role')", "selectattr('role', 'equalto', 'user')", "indent(2, true)",
    "rejectattr('content')", "tojson(sort_keys=true)"];
  const tests = ["defined", "undefined", "none", "string", "number", "integer", "mapping", "iterable", "sequence",
    "boolean", "true", "false", "odd", "even", "lower", "upper"];
  const methods = ["upper()", "lower()", "strip()", "lstrip()", "rstrip()", "title()", "split()", "split(',')",
    "startswith('H')", "endswith('d')", "replace('l', 'L')", "split(' ', 1)", "capitalize()", "items()", "keys()",
    "values()", "get('a')", "get('q', 5)", "length"];
  // No `**`: V8's pow (fdlibm) and glibc's differ in the last bit for non-integer results.
  const binops = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">", "<=", ">=", "and", "or", "in", "not in"];

  function expr(depth) {
    const k = depth > 3 ? Math.floor(r() * 3) : Math.floor(r() * 13);
    switch (k) {
      case 0: return pick(numbers);
      case 1: return pick(strings);
      case 2: return pick(vars);
      case 3: return `${expr(depth + 1)} ${pick(binops)} ${expr(depth + 1)}`;
      case 4: return `(${expr(depth + 1)}) | ${r() < 0.6 ? pick(filtersNoArg) : pick(filtersArgs)}`;
      case 5: return `${pick(vars)} is ${r() < 0.3 ? "not " : ""}${pick(tests)}`;
      case 6: return `${pick(vars)}.${pick(methods)}`;
      case 7: return `${pick(vars)}[${pick(["0", "-1", "1:", ":2", "::-1", "'a'", "'role'", "1::2"])}]`;
      case 8: return `${expr(depth + 1)} if ${expr(depth + 1)} else ${expr(depth + 1)}`;
      case 9: return `[${expr(depth + 1)}, ${expr(depth + 1)}]`;
      case 10: return `{'k': ${expr(depth + 1)}, ${pick(strings)}: ${expr(depth + 1)}}`;
      case 11: return `not ${expr(depth + 1)}`;
      default: return `-${pick(vars)}`;
    }
  }

  // Text and tags with random whitespace and `-` modifiers: exercises trim_blocks, lstrip_blocks
  // and whitespace control.
  const spaces = ["", " ", "  ", "\n", " \n  ", "\t", "\n\n", "\u00a0", "\u3000"];
  function ws() {
    return pick(spaces) + pick(spaces);
  }
  function open(kind) {
    const dash = r() < 0.3 ? "-" : "";
    return kind === "s" ? `{%${dash}` : kind === "e" ? `{{${dash}` : `{#${dash}`;
  }
  function close(kind) {
    const dash = r() < 0.3 ? "-" : "";
    return kind === "s" ? `${dash}%}` : kind === "e" ? `${dash}}}` : `${dash}#}`;
  }
  function layout() {
    let t = "";
    const n = 1 + Math.floor(r() * 4);
    for (let k = 0; k < n; ++k) {
      t += ws() + pick(["x", "y z", "", "é"]) + ws();
      switch (Math.floor(r() * 4)) {
        case 0: t += `${open("e")} ${pick(vars)} ${close("e")}`; break;
        case 1: t += `${open("c")} note ${close("c")}`; break;
        case 2: t += `${open("s")} if ${pick(vars)} ${close("s")}${ws()}in${ws()}${open("s")} else ${close("s")}${ws()}out${ws()}${open("s")} endif ${close("s")}`; break;
        default: t += `${open("s")} for q in l ${close("s")}${ws()}{{ q }}${ws()}${open("s")} endfor ${close("s")}`;
      }
    }
    return t + ws();
  }

  function macroCase() {
    return `{% macro m(a, b=${expr(2)}) %}<{{ a }}|{{ b }}>{% endmacro %}{{ m(${expr(2)}) }}{{ m(1, b=${expr(2)}) }}` +
      `{% set ns = namespace(acc=0, s='') %}{% for x in l %}{% set ns.acc = ns.acc + x %}{% set ns.s = ns.s ~ x %}{% endfor %}{{ ns.acc }}{{ ns.s }}`;
  }

  function stmt() {
    if (r() < 0.2) return layout();
    if (r() < 0.05) return macroCase();
    switch (Math.floor(r() * 5)) {
      case 0: return `{{ ${expr(0)} }}`;
      case 1: return `{% if ${expr(1)} %}Y{{ ${expr(1)} }}{% else %}N{% endif %}`;
      case 2: return `{% for x in ${pick(["l", "ls", "le", "d", "msgs", "range(3)", "l[::-1]"])} %}{{ x }}{{ ${expr(2)} }}{{ loop.index }}{% else %}E{% endfor %}`;
      case 3: return `{% set v = ${expr(1)} %}[{{ v }}]`;
      default: return ` {{- ${expr(1)} -}} \n`;
    }
  }

  const out = [];
  for (let c = 0; c < count; ++c) {
    let t = "";
    const n = 1 + Math.floor(r() * 3);
    for (let k = 0; k < n; ++k) t += stmt() + pick(["", " ", "\n", "|"]);
    out.push(t);
  }
  return out;
}

// Random conversations for the real templates: system prompts on or off, alternating turns,
// contents mixing scripts, emoji, markup, whitespace runs and think blocks; tool calls and tool
// results when `withTools`. Exported: randomConversations(n, seed, withTools).
export function randomConversations(count, seed, withTools) {
  const r = rng(seed);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const pieces = ["Hello", " world", "\n", "\n\n", "  ", "\t", "日本語", "中文", "한국어", "مرحبا", "שלום", "😀", "👩‍💻",
    "🇯🇵", "e\u0301", "\u00a0", "<b>", "{{ not a tag }}", "{% raw %}", "\\", "\"", "'", "</think>", "<think>", "12345",
    "<|im_start|>", "[INST]", "\u2028", "ß", "İ"];
  const text = () => {
    let t = "";
    const n = Math.floor(r() * 6);
    for (let i = 0; i < n; ++i) t += pick(pieces);
    return t;
  };
  const out = [];
  for (let c = 0; c < count; ++c) {
    const messages = [];
    if (r() < 0.5) messages.push({ role: "system", content: text() });
    const turns = 1 + Math.floor(r() * 4);
    for (let t = 0; t < turns; ++t) {
      messages.push({ role: "user", content: text() });
      if (t + 1 < turns || r() < 0.5) {
        if (withTools && r() < 0.4) {
          const args = { q: text(), n: Math.floor(r() * 10) };
          messages.push({ role: "assistant", content: r() < 0.5 ? "" : text(), tool_calls: [
            { type: "function", function: { name: pick(["get_weather", "search"]), arguments: r() < 0.5 ? args : JSON.stringify(args) } }] });
          messages.push({ role: "tool", content: text() });
          messages.push({ role: "assistant", content: text() });
        } else {
          messages.push({ role: "assistant", content: r() < 0.3 ? `<think>${text()}</think>${text()}` : text() });
        }
      }
    }
    out.push(messages);
  }
  return out;
}
