// cuBLASLt projection wrapper: per-shape plan = descriptors + the fastest of the heuristic's
// candidates (and split-K copies of them for skinny shapes), timed with CUDA events on the caller's
// buffers.
#include "kernels/cuda/gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_candidates.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/gemm_swiglu_wgmma.cuh"
#include "kernels/cuda/gemm_timing.h"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace tessera::cuda {
namespace {

bool gemv_fits(int32_t m, int32_t k, const void* x, const void* w) {
  return m <= kGemvMaxM && k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(w) % 16 == 0;
}

}  // namespace

Gemm::Gemm(void* workspace, size_t workspace_bytes, void* skinny_workspace, size_t skinny_bytes)
    : workspace_(workspace),
      workspace_bytes_(workspace_bytes),
      skinny_ws_(skinny_workspace),
      skinny_bytes_(skinny_workspace != nullptr ? skinny_bytes : 0) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  int device = 0, major = 0, minor = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  swiglu_device_ = gemm_swiglu_supported(major, minor);
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
  }
  for (auto& [key, p] : plans_f32_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
  }
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

void Gemm::warm(int32_t m, int32_t n, int32_t k, bool out_f32, const void* x, const void* w, void* y,
                cudaStream_t stream, int32_t row_capacity) {
  plan_for(m, n, k, out_f32, x, w, y, stream, row_capacity);
}

void Gemm::warm_silu_mul(int32_t m, int32_t n, int32_t k, const void* gate_up, void* act, const void* w, void* y,
                         cudaStream_t stream, int32_t row_capacity) {
  silu_plan_for(m, n, k, gate_up, act, w, y, stream, row_capacity);
}

int32_t Gemm::tuning_rows(int32_t m, int32_t row_capacity) const {
  if (!autotune_ || row_capacity <= m) return m;
  int64_t b = 1;
  while (b < m) b <<= 1;
  return static_cast<int32_t>(std::min<int64_t>(b, row_capacity));
}

int32_t Gemm::padded_rows(int32_t m, int32_t row_capacity, bool pad_rows) const {
  if (!pad_rows || m <= kSkinnyMaxM) return m;
  const int32_t t = tuning_rows(m, row_capacity);
  return t <= pad_up_to_ ? t : m;
}

Gemm::Plan Gemm::plan_from_bucket(const Plan& tuned, int32_t m, int32_t n, int32_t k, cudaDataType_t in,
                                  cudaDataType_t out, const void* x, const void* w) const {
  Plan p;
  create_descs(p, m, n, k, in, out);
  p.from_bucket = true;
  p.ms = tuned.ms;
  p.cublas_index = tuned.cublas_index;
  cublasLtMatmulHeuristicResult_t check{};
  if (cublasLtMatmulAlgoCheck(handle_, p.op, p.a, p.b, p.c, p.c, &tuned.algo, &check) == CUBLAS_STATUS_SUCCESS &&
      check.state == CUBLAS_STATUS_SUCCESS && check.workspaceSize <= workspace_bytes_) {
    p.algo = tuned.algo;
  } else {  // the bucket's algorithm does not take m rows: cuBLASLt's own first choice for m
    const auto c = cublas_candidates(handle_, MatmulDescs{p.op, p.a, p.b, p.c}, m, k, workspace_bytes_);
    TS_CHECK(!c.empty(), kInternal, "cuBLASLt has no algorithm for m={} n={} k={}", m, n, k);
    p.algo = c.front();
  }
  p.candidates = {p.algo};
  if (tuned.gemv_variant >= 0 && gemv_fits(m, k, x, w)) p.gemv_variant = tuned.gemv_variant;
  if (tuned.skinny_variant >= 0 && gemv_fits(1, k, x, w) && gemm_skinny_fits(m, n, k, tuned.skinny_variant))
    p.skinny_variant = tuned.skinny_variant;
  return p;
}

// y = x · wᵀ with fp32 accumulation, inputs of type `in`, output `out`. Column-major view:
// yᵀ[n, m] = w[n, k] (stored as kxn, transposed) · xᵀ (stored as kxm).
void Gemm::create_descs(Plan& p, int32_t m, int32_t n, int32_t k, cudaDataType_t in, cudaDataType_t out) {
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, in, k, n, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, in, k, m, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, out, n, m, n));
}

float Gemm::time_matmul(const Plan& p, const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, void* y,
                        cudaStream_t stream, bool flush) {
  const float alpha = 1.0f, beta = 0.0f;
  bool ok = true;
  const float ms = median_ms(stream, [&] { if (flush) flush_l2(stream); }, [&] {
    ok = ok && cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &algo, workspace_,
                              workspace_bytes_, stream) == CUBLAS_STATUS_SUCCESS;
  });
  return ok ? ms : std::numeric_limits<float>::infinity();
}

Gemm::Plan& Gemm::plan_for(int32_t m, int32_t n, int32_t k, bool out_f32, const void* x, const void* w, void* y,
                           cudaStream_t stream, int32_t row_capacity) {
  const Key key{m, n, k, out_f32, false};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  if (const int32_t t = tuning_rows(m, row_capacity); t != m) {
    const Plan& tuned = plan_for(t, n, k, out_f32, x, w, y, stream, t);  // std::map: stays valid below
    return plans_.emplace(key, plan_from_bucket(tuned, m, n, k, CUDA_R_16BF, out_f32 ? CUDA_R_32F : CUDA_R_16BF, x, w))
        .first->second;
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  TS_ASSERT(capture == cudaStreamCaptureStatusNone, "GEMM shape m={} n={} k={} first seen during graph capture", m, n,
            k);
  Plan p;
  create_descs(p, m, n, k, CUDA_R_16BF, out_f32 ? CUDA_R_32F : CUDA_R_16BF);
  p.candidates = cublas_candidates(handle_, MatmulDescs{p.op, p.a, p.b, p.c}, m, k, workspace_bytes_);
  TS_CHECK(!p.candidates.empty(), kInternal, "cuBLASLt has no algorithm for m={} n={} k={}", m, n, k);
  if (const GemmChoice* c = find_preset(GemmPath::kBf16, m, n, k, out_f32)) {  // a cached choice: nothing timed
    const bool gemv_ok = c->gemv_variant < 0 || (c->gemv_variant < kGemvVariants && gemv_fits(m, k, x, w));
    const bool skinny_ok = c->skinny_variant < 0 || (c->skinny_variant < kSkinnyVariants && gemv_fits(1, k, x, w) &&
                                                     gemm_skinny_fits(m, n, k, c->skinny_variant));
    if (c->cublas_index >= 0 && c->cublas_index < static_cast<int>(p.candidates.size()) && gemv_ok && skinny_ok) {
      p.cublas_index = c->cublas_index;
      p.algo = p.candidates[c->cublas_index];
      p.candidates = {p.algo};
      p.gemv_variant = c->gemv_variant;
      p.skinny_variant = c->skinny_variant;
      return plans_.emplace(key, p).first->second;
    }
  }
  if (!autotune_) {  // fixed choices, nothing timed (see set_autotune)
    p.algo = p.candidates.front();
    p.candidates.resize(1);
    if (allow_gemv_ && gemv_fits(m, k, x, w)) p.gemv_variant = kGemvFirstSplitK;
    return plans_.emplace(key, p).first->second;
  }

  // Time each candidate (one warm-up, then the median of 5, L2 overwritten first) and keep the fastest.
  ++timed_shapes_;
  float best = std::numeric_limits<float>::infinity();
  int best_i = 0;
  std::vector<cublasLtMatmulAlgo_t> ran;  // the candidates that launched; the others are dropped
  std::vector<float> ran_ms;
  std::vector<int> ran_index;  // each one's index in cublas_candidates' list (GemmChoice::cublas_index)
  for (size_t i = 0; i < p.candidates.size(); ++i) {
    const float ms = time_matmul(p, p.candidates[i], x, w, y, stream, /*flush=*/true);
    if (ms == std::numeric_limits<float>::infinity()) continue;
    ran.push_back(p.candidates[i]);
    ran_ms.push_back(ms);
    ran_index.push_back(static_cast<int>(i));
    if (ms < best) {
      best = ms;
      best_i = static_cast<int>(ran.size()) - 1;
    }
  }
  p.candidates = std::move(ran);
  TS_CHECK(best < std::numeric_limits<float>::infinity(), kInternal, "no cuBLASLt algorithm ran for m={} n={} k={}", m,
           n, k);
  if (sustained_rows_ > 0 && m >= sustained_rows_) {
    ++sustained_shapes_;
    best_i = retime_sustained(p, ran_ms, best_i, x, w, y, stream);
  }
  p.algo = p.candidates[best_i];
  p.cublas_index = ran_index[best_i];
  p.ms = ran_ms[best_i];
  p.cublas_ms = p.ms;
  // Up to 64 rows: the skinny tensor-core kernel, for each tile height and cluster split of k (only
  // with the flush scratch: timed with its weights in L2 it would win where it loses in a step).
  if (skinny_bytes_ > 0 && m <= kSkinnyMaxM && gemv_fits(1, k, x, w)) {
    p.skinny_ms.assign(kSkinnyVariants, std::numeric_limits<float>::infinity());
    for (int v = 0; v < kSkinnyVariants; ++v) {
      if (!gemm_skinny_fits(m, n, k, v)) continue;
      const float ms = median_ms(stream, [&] { flush_l2(stream); }, [&] {
        gemm_skinny(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w), y, m, n, k, out_f32,
                    v, stream);
      });
      p.skinny_ms[v] = ms;
      if (ms < p.ms) {
        p.ms = ms;
        p.skinny_variant = v;
      }
    }
  }
  // Decode-sized shapes: time the streaming gemv variants too, and keep whichever is fastest.
  if (allow_gemv_ && gemv_fits(m, k, x, w)) {
    p.gemv_ms.assign(kGemvVariants, std::numeric_limits<float>::infinity());
    float best_warp = std::numeric_limits<float>::infinity(), best_split = best_warp;
    int warp_v = -1, split_v = -1;
    for (int v = 0; v < kGemvVariants; ++v) {
      const float ms = median_ms(stream, [&] { flush_l2(stream); }, [&] {
        gemv(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w), y, m, n, k, out_f32, v,
             stream);
      });
      p.gemv_ms[v] = ms;
      float& best_family = v < kGemvFirstSplitK ? best_warp : best_split;
      if (ms < best_family) {
        best_family = ms;
        (v < kGemvFirstSplitK ? warp_v : split_v) = v;
      }
    }
    const bool warp_wins = best_warp < warp_margin_ * best_split;
    const float gemv_ms = warp_wins ? best_warp : best_split;
    if (gemv_ms < p.ms) {
      p.ms = gemv_ms;
      p.gemv_variant = warp_wins ? warp_v : split_v;
      p.skinny_variant = -1;
    }
  }
  return plans_.emplace(key, p).first->second;
}

Gemm::Plan& Gemm::silu_plan_for(int32_t m, int32_t n, int32_t k, const void* gate_up, void* act, const void* w,
                                void* y, cudaStream_t stream, int32_t row_capacity) {
  const Key key{m, n, k, false, true};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  if (const int32_t t = tuning_rows(m, row_capacity); t != m) {
    const Plan& tuned = silu_plan_for(t, n, k, gate_up, act, w, y, stream, t);
    plan_for(m, n, k, false, act, w, y, stream, row_capacity);  // the plain path's plan, from its bucket
    Plan p;  // only the fused-or-not choice (gemv_variant) is read from a SiLU plan
    p.from_bucket = true;
    if (tuned.gemv_variant >= 0 && gemv_fits(m, k, gate_up, w)) p.gemv_variant = tuned.gemv_variant;
    return plans_.emplace(key, p).first->second;
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  TS_ASSERT(capture == cudaStreamCaptureStatusNone, "SiLU GEMM shape m={} n={} k={} first seen during graph capture",
            m, n, k);
  silu_mul(static_cast<const __nv_bfloat16*>(gate_up), m, k, static_cast<__nv_bfloat16*>(act), stream);
  Plan& plain = plan_for(m, n, k, false, act, w, y, stream, m);  // timed on the real activation
  Plan p;                                                     // gemv_variant -1: silu_mul, then `plain`
  if (const GemmChoice* c = find_preset(GemmPath::kBf16SiluDown, m, n, k, false);
      c != nullptr && (c->gemv_variant < 0 || (c->gemv_variant >= kGemvFirstSplitK && c->gemv_variant < kGemvVariants &&
                                              allow_gemv_ && gemv_fits(m, k, gate_up, w)))) {
    p.gemv_variant = c->gemv_variant;  // a cached choice: nothing timed
  } else if (autotune_ && allow_gemv_ && gemv_fits(m, k, gate_up, w)) {
    const auto* gu = static_cast<const __nv_bfloat16*>(gate_up);
    p.ms = median_ms(stream, [&] { flush_l2(stream); }, [&] {
      silu_mul(gu, m, k, static_cast<__nv_bfloat16*>(act), stream);
      run_plan(plain, act, w, y, m, n, k, false, stream);
    });
    for (int v = kGemvFirstSplitK; v < kGemvVariants; ++v) {
      const float ms = median_ms(stream, [&] { flush_l2(stream); }, [&] {
        gemv(gu, static_cast<const __nv_bfloat16*>(w), y, m, n, k, false, v, stream, GemvInput::kSiluMul);
      });
      if (ms < p.ms) {
        p.ms = ms;
        p.gemv_variant = v;
      }
    }
  }
  return plans_.emplace(key, p).first->second;
}

void Gemm::flush_l2(cudaStream_t stream) const {
  if (skinny_bytes_ > 0) CUDA_CHECK(cudaMemsetAsync(skinny_ws_, 0x5A, skinny_bytes_, stream));
}

int Gemm::chosen_gemv_variant(int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  return it == plans_.end() ? -1 : it->second.gemv_variant;
}

int Gemm::chosen_skinny_variant(int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  return it == plans_.end() ? -1 : it->second.skinny_variant;
}

int Gemm::chosen_silu_variant(int32_t m, int32_t n, int32_t k) const {
  const auto it = plans_.find(Key{m, n, k, false, true});
  return it == plans_.end() ? -1 : it->second.gemv_variant;
}

int Gemm::num_cublas_candidates(int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  return it == plans_.end() ? 0 : static_cast<int>(it->second.candidates.size());
}

int Gemm::chosen_cublas_split_k(int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  if (it == plans_.end()) return 0;
  uint32_t splits = 1;
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&it->second.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof(splits),
                                           &written) != CUBLAS_STATUS_SUCCESS)
    return 1;
  return static_cast<int>(std::max<uint32_t>(splits, 1));
}

int Gemm::chosen_cublas_candidate(int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  if (it == plans_.end()) return -1;
  const Plan& p = it->second;
  for (size_t i = 0; i < p.candidates.size(); ++i)
    if (std::memcmp(&p.candidates[i], &p.algo, sizeof(p.algo)) == 0) return static_cast<int>(i);
  return -1;
}

std::string Gemm::describe_cublas_candidate(int i, int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  TS_CHECK(it != plans_.end() && i >= 0 && i < static_cast<int>(it->second.candidates.size()), kInvalidArgument,
           "cuBLASLt candidate {} of shape m={} n={} k={} does not exist", i, m, n, k);
  const cublasLtMatmulAlgo_t& algo = it->second.candidates[i];
  const std::pair<const char*, cublasLtMatmulAlgoConfigAttributes_t> fields[] = {
      {"algo", CUBLASLT_ALGO_CONFIG_ID},          {"tile", CUBLASLT_ALGO_CONFIG_TILE_ID},
      {"stages", CUBLASLT_ALGO_CONFIG_STAGES_ID}, {"splitk", CUBLASLT_ALGO_CONFIG_SPLITK_NUM},
      {"swizzle", CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING}, {"cluster", CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID},
      {"option", CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION}};
  std::string out;
  for (const auto& [name, attr] : fields) {
    size_t bytes = 0;  // asked first: the call wants the field's exact size (16 to 64 bits)
    if (cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, nullptr, 0, &bytes) != CUBLAS_STATUS_SUCCESS ||
        bytes > sizeof(uint64_t))
      continue;
    uint64_t v = 0;  // little-endian: a smaller field fills the low bytes
    size_t written = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, bytes, &written) != CUBLAS_STATUS_SUCCESS) continue;
    out += fmt::format("{}{} {}", out.empty() ? "" : " ", name, v);
  }
  return out;
}

void Gemm::run_cublas_candidate(int i, const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k,
                                bool out_f32, cudaStream_t stream) {
  const auto it = plans_.find(Key{m, n, k, out_f32, false});
  TS_CHECK(it != plans_.end() && i >= 0 && i < static_cast<int>(it->second.candidates.size()), kInvalidArgument,
           "cuBLASLt candidate {} of shape m={} n={} k={} does not exist", i, m, n, k);
  const Plan& p = it->second;
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.candidates[i],
                              workspace_, workspace_bytes_, stream));
}

void Gemm::run_silu_mul(const void* gate_up, void* act, const void* w, void* y, int32_t m, int32_t n, int32_t k,
                        cudaStream_t stream, int32_t row_capacity, bool pad_rows) {
  if (m == 0) return;
  const Plan& p = silu_plan_for(m, n, k, gate_up, act, w, y, stream, row_capacity);
  if (p.gemv_variant >= 0) {
    gemv(static_cast<const __nv_bfloat16*>(gate_up), static_cast<const __nv_bfloat16*>(w), y, m, n, k, false,
         p.gemv_variant, stream, GemvInput::kSiluMul);
    return;
  }
  silu_mul(static_cast<const __nv_bfloat16*>(gate_up), m, k, static_cast<__nv_bfloat16*>(act), stream);
  run(act, w, y, m, n, k, false, stream, row_capacity, pad_rows);
}

void Gemm::run(const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
               cudaStream_t stream, int32_t row_capacity, bool pad_rows) {
  if (m == 0) return;
  const int32_t r = padded_rows(m, row_capacity, pad_rows);
  run_plan(plan_for(r, n, k, out_f32, x, w, y, stream, row_capacity), x, w, y, r, n, k, out_f32, stream);
}

void Gemm::run_accumulate(const void* x, const void* w, float* y, float* scratch, int32_t m, int32_t n, int32_t k,
                          cudaStream_t stream, int32_t row_capacity, bool pad_rows) {
  TS_CHECK(m > kSkinnyMaxM, kInvalidArgument, "Gemm::run_accumulate: m={} rows (cuBLASLt only: more than {})", m,
           kSkinnyMaxM);
  const int32_t r = padded_rows(m, row_capacity, pad_rows);  // p's descriptors are r rows'
  const Plan& p = plan_for(r, n, k, /*out_f32=*/true, x, w, scratch, stream, row_capacity);
  TS_ASSERT(p.gemv_variant < 0 && p.skinny_variant < 0, "Gemm::run_accumulate: m={} n={} k={} chose a kernel "
            "without an accumulating epilogue", m, n, k);
  const float alpha = 1.0f, beta = 1.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo, workspace_,
                              workspace_bytes_, stream));
}

void Gemm::run_plan(const Plan& p, const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k,
                    bool out_f32, cudaStream_t stream) {
  if (p.skinny_variant >= 0) {
    gemm_skinny(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w), y, m, n, k, out_f32,
                p.skinny_variant, stream);
    return;
  }
  if (p.gemv_variant >= 0) {
    gemv(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w), y, m, n, k, out_f32,
         p.gemv_variant, stream);
    return;
  }
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo, workspace_,
                              workspace_bytes_, stream));
}

// The exact mode: fp32 everywhere, compute type CUBLAS_COMPUTE_32F (not the _FAST_TF32 variants, so
// no input is rounded to TF32).
Gemm::Plan& Gemm::plan_f32_for(int32_t m, int32_t n, int32_t k, const float* x, const float* w, float* y,
                               cudaStream_t stream, int32_t row_capacity) {
  const auto key = std::make_tuple(m, n, k);
  auto it = plans_f32_.find(key);
  if (it != plans_f32_.end()) return it->second;
  if (const int32_t t = tuning_rows(m, row_capacity); t != m) {
    const Plan& tuned = plan_f32_for(t, n, k, x, w, y, stream, t);
    return plans_f32_.emplace(key, plan_from_bucket(tuned, m, n, k, CUDA_R_32F, CUDA_R_32F, x, w)).first->second;
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  TS_ASSERT(capture == cudaStreamCaptureStatusNone, "fp32 GEMM shape m={} n={} k={} first seen during graph capture",
            m, n, k);
  Plan p;
  create_descs(p, m, n, k, CUDA_R_32F, CUDA_R_32F);
  try {
    choose_algo(p, x, w, y, m, n, k, stream);
  } catch (...) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
    throw;
  }
  return plans_f32_.emplace(key, p).first->second;
}

void Gemm::choose_algo(Plan& p, const void* x, const void* w, void* y, int32_t m, int32_t n, int32_t k,
                       cudaStream_t stream) {
  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                                    sizeof(workspace_bytes_)));
  std::vector<cublasLtMatmulHeuristicResult_t> results(8);
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref,
                                                           static_cast<int>(results.size()), results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  CUBLAS_CHECK(st);
  TS_CHECK(found > 0, kInternal, "cuBLASLt has no algorithm for m={} n={} k={}", m, n, k);
  for (int i = 0; i < found; ++i)  // never an algorithm that may drop k's tail (split_k_guard.h)
    if (!split_k_safe(k, algo_splits(results[i].algo))) results[i].state = CUBLAS_STATUS_NOT_SUPPORTED;
  if (const GemmChoice* c = find_preset(GemmPath::kF32, m, n, k, true);
      c != nullptr && c->cublas_index >= 0 && c->cublas_index < found &&
      results[c->cublas_index].state == CUBLAS_STATUS_SUCCESS) {  // a cached choice: nothing timed
    p.cublas_index = c->cublas_index;
    p.algo = results[c->cublas_index].algo;
    return;
  }
  if (!autotune_) {  // the heuristic's first usable algorithm, nothing timed (see set_autotune)
    for (int i = 0; i < found; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS) {
        p.algo = results[i].algo;
        p.cublas_index = i;
        return;
      }
    TS_THROW(kInternal, "cuBLASLt offers no usable algorithm for m={} n={} k={}", m, n, k);
  }
  ++timed_shapes_;
  float best = std::numeric_limits<float>::infinity();
  int best_i = -1;
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    const float ms = time_matmul(p, results[i].algo, x, w, y, stream, /*flush=*/false);
    if (ms < best) {
      best = ms;
      best_i = i;
    }
  }
  TS_CHECK(best_i >= 0, kInternal, "no cuBLASLt algorithm ran for m={} n={} k={}", m, n, k);
  p.algo = results[best_i].algo;
  p.cublas_index = best_i;
  p.ms = best;
}

void Gemm::preset(const GemmChoice& c) {
  presets_[std::make_tuple(static_cast<int32_t>(c.path), c.m, c.n, c.k, c.out_f32)] = c;
}

const GemmChoice* Gemm::find_preset(GemmPath path, int32_t m, int32_t n, int32_t k, bool out_f32) const {
  const auto it = presets_.find(std::make_tuple(static_cast<int32_t>(path), m, n, k, out_f32));
  return it == presets_.end() ? nullptr : &it->second;
}

std::vector<GemmChoice> Gemm::choices() const {
  std::vector<GemmChoice> out;
  for (const auto& [key, p] : plans_) {
    if (p.from_bucket) continue;  // follows its bucket's choice, which is listed
    const auto& [m, n, k, out_f32, silu] = key;
    GemmChoice c;
    c.path = silu ? GemmPath::kBf16SiluDown : GemmPath::kBf16;
    c.m = m, c.n = n, c.k = k, c.out_f32 = out_f32;
    c.cublas_index = silu ? 0 : p.cublas_index;
    c.gemv_variant = p.gemv_variant;
    c.skinny_variant = silu ? -1 : p.skinny_variant;
    out.push_back(c);
  }
  if (swiglu_forced_ < 0) {  // a forced variant (set_swiglu_variant, for A/B runs) is not a choice to keep
    for (const auto& [key, sc] : swiglu_variants_) {
      GemmChoice c;
      c.path = GemmPath::kSwiglu;
      std::tie(c.m, c.n, c.k) = key;
      c.swiglu_variant = sc.variant;
      out.push_back(c);
    }
  }
  for (const auto& [key, p] : plans_f32_) {
    if (p.from_bucket) continue;
    GemmChoice c;
    c.path = GemmPath::kF32;
    std::tie(c.m, c.n, c.k) = key;
    c.out_f32 = true;
    c.cublas_index = p.cublas_index;
    out.push_back(c);
  }
  return out;
}

void Gemm::run_f32(const float* x, const float* w, float* y, int32_t m, int32_t n, int32_t k, cudaStream_t stream,
                   int32_t row_capacity) {
  if (m == 0) return;
  Plan& p = plan_f32_for(m, n, k, x, w, y, stream, row_capacity);
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo, workspace_,
                              workspace_bytes_, stream));
}

}  // namespace tessera::cuda
