// Which CUDA graphs the CUDA runner's decode-only steps can replay: a graph is keyed by the batch
// bucket the step is padded to, the attention split count baked into its launches and the sampler
// launches it runs. decode_graph_keys lists every key a runner can need, so the runner can capture
// them all at start (CudaRunner::capture_decode_graphs) instead of inside a serving step.
// Plain host logic: no CUDA. The runner passes its split heuristic in as a function; this file must
// never launch, allocate or know a kernel.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tessera {

// The sampler launches a decode graph bakes in (kernels/cuda/sampling.cuh, SampleArgs): every kernel
// (kFull), the statistics kernel only (kGreedyOnly: every row greedy, no logprobs), or all but the
// selection pass (kNoSelection: no row wants top-k / top-p / logprobs).
enum class DecodeSamplerMode : int8_t { kFull = 0, kGreedyOnly = 1, kNoSelection = 2 };
inline constexpr DecodeSamplerMode kDecodeSamplerModes[] = {DecodeSamplerMode::kFull, DecodeSamplerMode::kGreedyOnly,
                                                            DecodeSamplerMode::kNoSelection};

// The mode of a step from the sampler's two host promises (greedy_only implies no selection).
DecodeSamplerMode decode_sampler_mode(bool greedy_only, bool no_selection);
inline bool greedy_only(DecodeSamplerMode m) { return m == DecodeSamplerMode::kGreedyOnly; }
inline bool no_selection(DecodeSamplerMode m) { return m != DecodeSamplerMode::kFull; }

struct DecodeGraphKey {
  int32_t bucket = 0;  // rows (= sequences) the step is padded to
  int32_t splits = 1;  // attention key splits
  DecodeSamplerMode mode = DecodeSamplerMode::kFull;
  auto operator<=>(const DecodeGraphKey&) const = default;
};
std::string to_string(const DecodeGraphKey& key);

// The batch buckets decode-only steps are padded to: the powers of two up to 512 that are at most
// max_num_seqs and max_num_tokens, and that limit itself when it is not a power of two (so every batch
// the step limits allow up to 512 replays a graph, and a batch at the limit is not padded past it; a
// batch above 512 runs eagerly).
std::vector<int32_t> decode_graph_buckets(int32_t max_num_seqs, int32_t max_num_tokens);
// The bucket of a decode-only step of `batch` sequences: the smallest at least `batch`; 0 when none.
int32_t decode_graph_bucket(int32_t batch, int32_t max_num_seqs, int32_t max_num_tokens);

// The split count a decode step padded to `bucket` rows uses when its longest context is
// `max_context` keys (the runner's heuristic).
using DecodeSplitsFn = std::function<int32_t(int32_t bucket, int32_t max_context)>;

// Every key a step can need: each bucket, each distinct splits(bucket, c) over c in [1, max_model_len]
// (every context is asked: the heuristic need not be monotonic), each sampler mode. Sorted, unique.
// Throws kInvalidArgument on max_model_len < 1 or a split count outside [1, 256].
std::vector<DecodeGraphKey> decode_graph_keys(const std::vector<int32_t>& buckets, int32_t max_model_len,
                                              const DecodeSplitsFn& splits);

}  // namespace tessera
