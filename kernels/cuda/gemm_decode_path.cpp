// Gemm's in-step decode tuning interface (model/cuda_runner_decode_chain_tuning.cpp drives it): the paths
// a decode-sized shape timed in this process came close on alone (its cuBLASLt algorithm, gemv and
// skinny variants), the one it runs, and choosing another of them. Never times or launches anything.
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kernels/cuda/gemm.h"

namespace tessera::cuda {

std::vector<DecodePath> Gemm::decode_contenders(int32_t m, int32_t n, int32_t k, bool out_f32, float margin,
                                                size_t max) const {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  if (it == plans_.end() || it->second.from_bucket || (it->second.gemv_ms.empty() && it->second.skinny_ms.empty()))
    return {};
  const Plan& p = it->second;
  std::vector<std::pair<float, DecodePath>> timed{{p.cublas_ms, DecodePath{}}};
  for (int v = 0; v < static_cast<int>(p.gemv_ms.size()); ++v) timed.push_back({p.gemv_ms[v], {.gemv_variant = v}});
  for (int v = 0; v < static_cast<int>(p.skinny_ms.size()); ++v)
    timed.push_back({p.skinny_ms[v], {.skinny_variant = v}});
  std::stable_sort(timed.begin(), timed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<DecodePath> out;
  for (const auto& [ms, path] : timed)
    if (out.size() < max && ms <= margin * timed.front().first) out.push_back(path);
  return out;
}

DecodePath Gemm::chosen_decode_path(int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  if (it == plans_.end()) return DecodePath{.gemv_variant = -2, .skinny_variant = -2};
  return DecodePath{.gemv_variant = it->second.gemv_variant, .skinny_variant = it->second.skinny_variant};
}

void Gemm::choose_decode_path(int32_t m, int32_t n, int32_t k, bool out_f32, DecodePath path) {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  TS_CHECK(it != plans_.end() && !it->second.from_bucket &&
               (!it->second.gemv_ms.empty() || !it->second.skinny_ms.empty()),
           kFailedPrecondition,
           "Gemm::choose_decode_path: m={} n={} k={} out_f32={} has no gemv or skinny variants timed in this process",
           m, n, k, out_f32);
  Plan& p = it->second;
  auto timed = [](const std::vector<float>& ms, int v) {
    return v >= 0 && v < static_cast<int>(ms.size()) && ms[v] < std::numeric_limits<float>::infinity();
  };
  const int g = path.gemv_variant, s = path.skinny_variant;
  TS_CHECK((g == -1 || timed(p.gemv_ms, g)) && (s == -1 || timed(p.skinny_ms, s)) && (g < 0 || s < 0),
           kInvalidArgument, "Gemm::choose_decode_path: gemv variant={} skinny variant={} is not a path timed for "
           "m={} n={} k={}", g, s, m, n, k);
  p.gemv_variant = g;
  p.skinny_variant = s;
  p.ms = g >= 0 ? p.gemv_ms[g] : s >= 0 ? p.skinny_ms[s] : p.cublas_ms;
  // Plans that took this shape's choice as their bucket's are made again from it on their next use.
  std::erase_if(plans_, [&](const auto& e) {
    const auto& [pm, pn, pk, pf, silu] = e.first;
    return e.second.from_bucket && !silu && pn == n && pk == k && pf == out_f32 && pm != m;
  });
}

}  // namespace tessera::cuda
