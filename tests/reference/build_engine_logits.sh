#!/usr/bin/env bash
# Builds engine_logits with plain g++ (no CMake configure, so it works on a machine that has only a
# compiler, fmt, spdlog and nlohmann-json), for the device-side transformers comparison.
# Usage: tests/reference/build_engine_logits.sh OUT_BINARY
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$1
obj=$(mktemp -d)
flags="-std=c++20 -O2 -I. -DFMT_SHARED -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB"
avx="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma -mf16c"
srcs=(common/error.cpp common/log.cpp model/model_config.cpp model/safetensors_header.cpp model/mapped_file.cpp
      model/checkpoint.cpp model/model_weights.cpp model/rope_frequencies.cpp model/kv_cache.cpp model/step_batch.cpp
      model/sampler.cpp model/cpu_model_runner.cpp kernels/cpu/cpu_features.cpp kernels/cpu/thread_pool.cpp
      kernels/cpu/linear.cpp kernels/cpu/linear_scalar.cpp kernels/cpu/reference_linear.cpp
      kernels/cpu/transformer_ops.cpp kernels/cpu/paged_attention.cpp tests/reference/engine_logits.cpp)
avx_srcs=(kernels/cpu/linear_avx512.cpp kernels/cpu/gemm_avx512.cpp kernels/cpu/paged_attention_avx512.cpp)
pids=()
for s in "${srcs[@]}"; do g++ $flags -c "$s" -o "$obj/$(echo "$s" | tr / _).o" & pids+=($!); done
for s in "${avx_srcs[@]}"; do g++ $flags $avx -c "$s" -o "$obj/$(echo "$s" | tr / _).o" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
g++ -o "$out" "$obj"/*.o -lfmt -lspdlog -lpthread
rm -rf "$obj"
