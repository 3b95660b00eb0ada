// SchedulerConfig: the scheduler's one typed, immutable configuration, validated at construction.
// It must never read the environment or the command line; the engine fills it.
#pragma once

#include <cstdint>
#include <vector>

#include "common/error.h"
#include "scheduler/types.h"

namespace tessera {

struct SchedulerConfig {
  int32_t block_size = 16;                // tokens per KV block (> 0)
  int32_t num_kv_blocks = 0;              // KV blocks in the cache (> 0)
  int32_t max_num_seqs = 256;             // sequences in one step at most (> 0)
  int32_t max_num_batched_tokens = 2048;  // tokens in one step at most (>= max_num_seqs)
  int32_t max_model_len = 4096;           // tokens of one sequence at most (fits in the KV cache)
  bool enable_prefix_caching = true;
  std::vector<TokenId> eos_token_ids;     // end-of-sequence tokens (honoured unless ignore_eos)

  // Throws Error(kInvalidArgument) naming the first field that is out of range.
  void validate() const {
    TS_CHECK(block_size > 0, kInvalidArgument, "block_size must be > 0, got {}", block_size);
    TS_CHECK(num_kv_blocks > 0, kInvalidArgument, "num_kv_blocks must be > 0, got {}", num_kv_blocks);
    TS_CHECK(max_num_seqs > 0, kInvalidArgument, "max_num_seqs must be > 0, got {}", max_num_seqs);
    TS_CHECK(max_num_batched_tokens >= max_num_seqs, kInvalidArgument,
             "max_num_batched_tokens ({}) must be >= max_num_seqs ({})", max_num_batched_tokens, max_num_seqs);
    TS_CHECK(max_model_len > 0, kInvalidArgument, "max_model_len must be > 0, got {}", max_model_len);
    const int64_t kv_tokens = int64_t{num_kv_blocks} * block_size;
    TS_CHECK(kv_tokens >= max_model_len, kInvalidArgument,
             "the KV cache ({} blocks x {} tokens = {} tokens) must hold one sequence of max_model_len {}",
             num_kv_blocks, block_size, kv_tokens, max_model_len);
  }
};

}  // namespace tessera
