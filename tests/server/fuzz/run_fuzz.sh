#!/usr/bin/env bash
# Builds the request-validator fuzz target with clang++ -fsanitize=fuzzer,address,undefined and runs it
# for a bounded time from a small seed corpus. Usage: run_fuzz.sh SOURCE_DIR WORK_DIR SECONDS
set -euo pipefail
src=$1 work=$2 secs=$3
mkdir -p "$work/corpus"
printf '%s' '{"model":"m","prompt":"hi","max_tokens":5,"temperature":0.5,"stop":["a"],"logit_bias":{"5":1}}' > "$work/corpus/completion.json"
printf '%s' '{"prompt":[[1,2],"x"],"n":2,"echo":true,"logprobs":2,"stream":true,"stream_options":{"include_usage":true}}' > "$work/corpus/prompts.json"
printf '%s' '{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"logprobs":true,"top_logprobs":2}' > "$work/corpus/chat.json"
printf '%s' '{"tokens":[1,2,3],"skip_special_tokens":true}' > "$work/corpus/detok.json"
s="$src/server"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  "$src/tests/server/fuzz/request_validator_fuzz.cpp" "$s/json_fields.cpp" "$s/generation_fields.cpp" \
  "$s/request_validator.cpp" "$s/chat_request.cpp" "$src/common/error.cpp" "$src/common/utf8.cpp" -lfmt -o "$work/request_validator_fuzz"
"$work/request_validator_fuzz" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work/corpus"
