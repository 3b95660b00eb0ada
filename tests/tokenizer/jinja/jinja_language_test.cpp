// The Jinja language of tessera_chat_template, feature by feature: each test renders a small
// template through ChatTemplate with variables in the extra context and checks the exact string
// @huggingface/jinja renders (the parity test checks the same against the reference in node).
#include "common/error.h"
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tessera {
namespace {

using ojson = nlohmann::ordered_json;

std::string render(const std::string& src, const ojson& vars = ojson::object()) {
  ChatTemplate t(src, "<s>", "</s>");
  return t.render(ojson::array(), ojson(), false, vars);
}

ErrorCode error_of(const std::string& src, std::string* message = nullptr, const ojson& vars = ojson::object()) {
  try {
    render(src, vars);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no error for " << src;
  return ErrorCode::kInternal;
}

TEST(JinjaText, PassesTextThroughAndDropsOneTrailingNewline) {
  EXPECT_EQ(render("hello\n"), "hello");
  EXPECT_EQ(render("hello\n\n"), "hello\n");
  EXPECT_EQ(render("a {# note #} b"), "a  b");
  EXPECT_EQ(render("{{ bos_token }}x{{ eos_token }}"), "<s>x</s>");
}

TEST(JinjaText, WhitespaceControlTrimsAroundTags) {
  EXPECT_EQ(render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(render("a \n {%- if true -%} \n b {%- endif %}"), "ab");
  EXPECT_EQ(render("x {#- c -#} y"), "xy");
}

TEST(JinjaText, TrimBlocksAndLstripBlocksAsTransformersSetsThem) {
  // lstrip_blocks removes the indentation before a block tag; trim_blocks the newline after it.
  EXPECT_EQ(render("<\n  {% if true %}\n  x\n  {% endif %}\n>"), "<\n  x\n>");
  // Expressions are not blocks: their newline and indentation stay.
  EXPECT_EQ(render("  {{ 'v' }}\nz"), "  v\nz");
}

TEST(JinjaText, GenerationTagIsRemoved) {
  EXPECT_EQ(render("a{% generation %}b{% endgeneration %}c"), "abc");
  EXPECT_EQ(render("a  {%- generation %}  b"), "a  b");
}

TEST(JinjaControl, IfElifElse) {
  const std::string t = "{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}";
  EXPECT_EQ(render(t, {{"n", 1}}), "one");
  EXPECT_EQ(render(t, {{"n", 2}}), "two");
  EXPECT_EQ(render(t, {{"n", 5}}), "many");
}

TEST(JinjaControl, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }};{% endfor %}",
                   {{"xs", {"a", "b"}}}),
            "102truefalse2;211falsetrue2;");
}

TEST(JinjaControl, ForElseTupleUnpackFilterBreakContinue) {
  EXPECT_EQ(render("{% for x in [] %}x{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", {{"d", {{"a", 1}, {"b", 2}}}}),
            "a=1,b=2,");
  EXPECT_EQ(render("{% for x in [1,2,3,4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"), "2/2 4/2 ");
  // The output of an iteration that hits continue or break is dropped, as in @huggingface/jinja.
  EXPECT_EQ(render("{% for x in [1,2,3] %}<{{ x }}{% if x == 2 %}{% continue %}{% endif %}>{% endfor %}"), "<1><3>");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}"), "1");
  EXPECT_EQ(render("{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}"), "ba");
}

TEST(JinjaControl, SetScopesAndNamespaces) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(x=1) %}{% for i in [1,2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}"), "4");
  EXPECT_EQ(render("{% set a, b = 1, 'z' %}{{ a }}{{ b }}"), "1z");
  EXPECT_EQ(render("{% set block %}<{{ 1 + 1 }}>{% endset %}{{ block }}"), "<2>");
  EXPECT_EQ(render("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns['b'] }}{{ ns }}"), "12{\"a\": 1, \"b\": 2}");
}

TEST(JinjaControl, MacrosWithDefaultsKeywordsAndCaller) {
  const std::string m = "{% macro f(a, b='B', c=a ~ '!') %}{{ a }}{{ b }}{{ c }}{% endmacro %}";
  EXPECT_EQ(render(m + "{{ f(1) }}|{{ f(1, 2) }}|{{ f(1, c=3) }}|{{ f(b=0, a=9) }}"), "1B1!|121!|1B3|909!");
  EXPECT_EQ(render("{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}in{% endcall %}"), "[in]");
  EXPECT_EQ(render("{% macro v() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ v(1, k=2) }}"), "[1]{\"k\": 2}");
  EXPECT_EQ(error_of(m + "{{ f(1, z=2) }}"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_of(m + "{{ f(1, 2, 3, 4) }}"), ErrorCode::kInvalidArgument);
}

TEST(JinjaExpressions, ArithmeticPrintsNumbersAsJavaScriptDoes) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** 3 ** 2 }} {{ 1.0 }} {{ 0.1 + 0.2 }}"),
            "3 3.5 -1 1024 64 1.0 0.30000000000000004");
  EXPECT_EQ(render("{{ 100000000000000000000000 }} {{ 0.0000001 }} {{ 1 / 0 }} {{ -0.0 }} {{ 2.5 | int }}"),
            "1e+23 1e-7 Infinity -0.0 2");
  EXPECT_EQ(render("{{ n }} {{ f }}", {{"n", 3.0}, {"f", 2.5}}), "3 2.5");
}

TEST(JinjaExpressions, LogicComparisonMembershipAndTernary) {
  EXPECT_EQ(render("{{ 1 and 'x' }} {{ 0 or 'y' }} {{ not [] }} {{ 'a' if 0 else 'b' }} [{{ 'c' if 0 }}]"), "x y true b []");
  EXPECT_EQ(render("{{ 1 in [1, 2] }} {{ 3 not in [1] }} {{ 'el' in 'hello' }} {{ 'k' in {'k': 1} }} {{ 'k' in nope }}"),
            "true true true true false");
  EXPECT_EQ(render("{{ '1' == 1 }} {{ none == nope }} {{ [1] == [1] }} {{ 'b' > 'a' }} {{ not 1 == 2 }}"),
            "true true false true true");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ true }} {{ 'n' + 2.0 }} {{ [1] + [2] }}"), "a1true n2 [1, 2]");
}

TEST(JinjaExpressions, AttributeAndSubscriptAccessYieldUndefinedWhenMissing) {
  const ojson vars = {{"m", {{"role", "user"}, {"list", {1, 2, 3}}}}};
  EXPECT_EQ(render("[{{ m.nope }}][{{ m['nope'] }}][{{ m.nope.deeper }}][{{ m.list[9] }}]", vars), "[][][][]");
  EXPECT_EQ(render("{{ m.role }}{{ m['list'][-1] }}{{ m.list.length }}{{ m.role[0] }}", vars), "user33u");
  EXPECT_EQ(render("{{ m.nope is defined }}{{ m.role is defined }}", vars), "falsetrue");
}

TEST(JinjaExpressions, Slicing) {
  EXPECT_EQ(render("{{ 'abcdef'[::-1] }} {{ 'abcdef'[1:3] }} {{ [1,2,3,4][::2] }} {{ [1,2,3][-2:] }} {{ 'héllo'[1:2] }}"),
            "fedcba bc [1, 3] [2, 3] é");
}

TEST(JinjaExpressions, LiteralsAndConstants) {
  EXPECT_EQ(render("{{ [1, 'a', none, True, false] }} {{ {'a': {'b': [None]}} }} {{ 'x' 'y' }} {{ '\\u00e9\\x41\\n' }}"),
            "[1, \"a\", null, true, false] {\"a\": {\"b\": [null]}} xy éA\n");
}

TEST(JinjaStrings, Methods) {
  EXPECT_EQ(render("{{ ' a b '.strip() }}|{{ ' a'.lstrip() }}|{{ 'a '.rstrip() }}|{{ 'ab'.upper() }}|{{ 'AB'.lower() }}"),
            "a b|a|a|AB|ab");
  EXPECT_EQ(render("{{ 'ab'.startswith('a') }}{{ 'ab'.endswith(('x', 'b')) }}{{ 'a b'.title() }}{{ 'aB'.capitalize() }}"),
            "truetrueA BAB");
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}"),
            "[\"a\", \"b\", \"\", \"c\"][\"a\", \"b\"][\"a\", \"b,c\"][\"a,b\", \"c\"]");
  EXPECT_EQ(render("{{ 'aaa'.replace('a', 'b', 2) }}{{ 'ab'.replace('', '-') }}{{ 'héllo'.find('l') }}{{ 'abab'.count('ab') }}"),
            "bba-a-b-22");
  // strip/lstrip/rstrip ignore their argument and strip whitespace, as @huggingface/jinja does.
  EXPECT_EQ(render("[{{ '\\n  x\\n'.strip('\\n') }}]"), "[x]");
}

TEST(JinjaStrings, UnicodeCaseAndLength) {
  EXPECT_EQ(render("{{ 'straße é' | upper }} {{ 'ÉCOLE' | lower }} {{ '😀a' | length }} {{ 'é' | length }}"),
            "STRASSE É école 3 1");
}

TEST(JinjaDicts, Methods) {
  const ojson vars = {{"d", {{"b", 1}, {"a", 2}}}};
  EXPECT_EQ(render("{{ d.keys() }}{{ d.values() }}{{ d.items() }}{{ d.get('a') }}{{ d.get('z', 0) }}{{ d.get('z') }}", vars),
            "[\"b\", \"a\"][1, 2][[\"b\", 1], [\"a\", 2]]20");
  EXPECT_EQ(render("{{ d | dictsort }}{{ d | items }}{{ d | length }}", vars), "[[\"a\", 2], [\"b\", 1]][[\"b\", 1], [\"a\", 2]]2");
}

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(render("[{{ ' x ' | trim }}][{{ 'a b' | title }}][{{ 'aB' | capitalize }}][{{ 'ab' | replace('a', 'c') }}]"),
            "[x][A B][AB][cb]");
  EXPECT_EQ(render("{{ '42' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ '2.5' | float }} {{ 3 | string }} {{ true | string }}"),
            "42 0 7 2.5 3 true");
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}"), "a\n    b\n\n    c|  a\n  b");
  EXPECT_EQ(render("{{ 'x' | safe }}{{ nope | default('d') }}{{ '' | default('e', true) }}{{ '' | default('f') }}"), "xde");
}

TEST(JinjaFilters, Sequences) {
  const ojson vars = {{"xs", {3, 1, 2}}, {"ws", {"b", "A", "a"}},
                      {"us", {{{"n", "z"}, {"ok", true}, {"k", 2}}, {{"n", "y"}, {"ok", false}, {"k", 1}}}}};
  EXPECT_EQ(render("{{ xs | first }}{{ xs | last }}{{ xs | length }}{{ xs | reverse }}{{ xs | sort }}{{ xs | join('-') }}", vars),
            "323[2, 1, 3][1, 2, 3]3-1-2");
  EXPECT_EQ(render("{{ ws | sort }}{{ ws | sort(reverse=true) }}{{ [1, 1, 2] | unique }}{{ xs | list }}", vars),
            "[\"A\", \"a\", \"b\"][\"b\", \"A\", \"a\"][1, 2][3, 1, 2]");
  EXPECT_EQ(render("{{ us | selectattr('ok') | map(attribute='n') | join }}{{ us | rejectattr('ok') | map(attribute='n') | join }}"
                   "{{ us | sort(attribute='k') | map(attribute='n') | join }}",
                   vars),
            "zyyz");
  // Extensions with Python Jinja's meaning (no @huggingface/jinja equivalent).
  EXPECT_EQ(render("{{ [1, 2, 3, 4] | select('odd') }}{{ [1, 2, 3] | reject('even') }}{{ us | selectattr('k', 'equalto', 2) | length }}"
                   "{{ 2.567 | round(2) }}{{ 2.5 | round }}{{ -3 | abs }}{{ ws | map('lower') }}",
                   vars),
            "[1, 3][1, 3]12.573.03[\"b\", \"a\", \"a\"]");
}

TEST(JinjaFilters, ToJsonMatchesPythonJsonDumps) {
  const ojson vars = {{"d", {{"a", {1, 2}}, {"b", {{"c", nullptr}}}, {"e", ojson::array()}, {"s", "é\"\n"}}}};
  EXPECT_EQ(render("{{ d | tojson }}", vars), "{\"a\": [1, 2], \"b\": {\"c\": null}, \"e\": [], \"s\": \"é\\\"\\n\"}");
  EXPECT_EQ(render("{{ d | tojson(indent=2) }}", vars),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {\n    \"c\": null\n  },\n  \"e\": [],\n  \"s\": \"é\\\"\\n\"\n}");
  EXPECT_EQ(render("{{ 'é😀' | tojson(ensure_ascii=true) }}{{ {'b': 1, 'a': 2} | tojson(sort_keys=true, separators=[',', ':']) }}"),
            "\"\\u00e9\\ud83d\\ude00\"{\"a\":2,\"b\":1}");
}

TEST(JinjaTests, BuiltinTests) {
  EXPECT_EQ(render("{{ none is none }}{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ 's' is string }}{{ {} is mapping }}"
                   "{{ [] is iterable }}{{ 's' is sequence }}{{ true is boolean }}{{ true is true }}{{ 0 is false }}"),
            "truetruetruetruetruetruetruetruetruetruefalse");
  EXPECT_EQ(render("{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby(3) }}{{ 1 is eq(1) }}{{ 1 is ne(2) }}{{ 2 is in([1, 2]) }}"
                   "{{ x is undefined }}{{ x is not defined }}{{ 'a' is lower }}{{ 'A' is upper }}"),
            "truetruetruetruetruetruetruetruetruetrue");
}

TEST(JinjaGlobals, RangeNamespaceRaiseAndStrftime) {
  EXPECT_EQ(render("{{ range(3) }}{{ range(1, 7, 2) }}{{ range(3, 0, -1) }}"), "[0, 1, 2][1, 3, 5][3, 2, 1]");
  EXPECT_EQ(render("{{ strftime_now('%Y') | length }}{{ strftime_now('%%') }}"), "4%");
  std::string msg;
  EXPECT_EQ(error_of("{{ raise_exception('Roles must alternate: ' ~ n) }}", &msg, {{"n", 3}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(msg, "Roles must alternate: 3");
}

}  // namespace
}  // namespace tessera
