// decode_graph_plan.h: the decode graph keys a CUDA runner can need (host logic only).
#include "model/decode_graph_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/error.h"

namespace tessera {
namespace {

constexpr int32_t kLargestBucket = 512;
constexpr int32_t kMaxSplits = 256;

const char* mode_name(DecodeSamplerMode m) {
  switch (m) {
    case DecodeSamplerMode::kFull: return "full";
    case DecodeSamplerMode::kGreedyOnly: return "greedy";
    case DecodeSamplerMode::kNoSelection: return "no-selection";
  }
  return "?";
}

}  // namespace

DecodeSamplerMode decode_sampler_mode(bool greedy_only, bool no_selection) {
  if (greedy_only) return DecodeSamplerMode::kGreedyOnly;
  return no_selection ? DecodeSamplerMode::kNoSelection : DecodeSamplerMode::kFull;
}

std::string to_string(const DecodeGraphKey& key) {
  return fmt::format("bucket {} / {} splits / {} sampler", key.bucket, key.splits, mode_name(key.mode));
}

std::vector<int32_t> decode_graph_buckets(int32_t max_num_seqs, int32_t max_num_tokens) {
  std::vector<int32_t> out;
  const int32_t cap = std::min({kLargestBucket, max_num_seqs, max_num_tokens});
  for (int32_t b = 1; b <= cap; b *= 2) out.push_back(b);
  if (cap > 0 && out.back() != cap) out.push_back(cap);  // the limit itself: no batch it allows runs eagerly
  return out;
}

int32_t decode_graph_bucket(int32_t batch, int32_t max_num_seqs, int32_t max_num_tokens) {
  for (int32_t b : decode_graph_buckets(max_num_seqs, max_num_tokens))
    if (b >= batch) return b;
  return 0;
}

std::vector<DecodeGraphKey> decode_graph_keys(const std::vector<int32_t>& buckets, int32_t max_model_len,
                                              const DecodeSplitsFn& splits) {
  TS_CHECK(max_model_len >= 1, kInvalidArgument, "decode graph keys: max_model_len must be at least 1; got {}",
           max_model_len);
  std::set<DecodeGraphKey> keys;
  for (int32_t bucket : buckets) {
    std::set<int32_t> seen;
    int32_t last = 0;  // the set is touched only where the count changes (131,072 contexts x 10 buckets)
    for (int32_t context = 1; context <= max_model_len; ++context) {
      const int32_t s = splits(bucket, context);
      if (context > 1 && s == last) continue;
      TS_CHECK(s >= 1 && s <= kMaxSplits, kInvalidArgument,
               "decode graph keys: {} splits for bucket {} at context {} (must be in [1, {}])", s, bucket, context,
               kMaxSplits);
      seen.insert(s);
      last = s;
    }
    for (int32_t s : seen)
      for (DecodeSamplerMode m : kDecodeSamplerModes) keys.insert(DecodeGraphKey{bucket, s, m});
  }
  return {keys.begin(), keys.end()};
}

}  // namespace tessera
