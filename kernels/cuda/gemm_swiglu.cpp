// Host side of the SwiGLU gate/up GEMM (gemm_swiglu_wgmma.cuh): the shape checks and the tensor maps.
#include <cstdint>
#include <utility>

#include "common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_swiglu_wgmma.cuh"
#include "kernels/cuda/tensor_map.h"

namespace tessera::cuda {

void gemm_swiglu_check(const void* x, const void* w, const void* act, int32_t m, int32_t inter, int32_t k) {
  TS_CHECK(m >= 1, kInvalidArgument, "gemm_swiglu: m={} rows (needs at least 1)", m);
  TS_CHECK(inter >= kSwigluTileCols && inter % kSwigluTileCols == 0, kInvalidArgument,
           "gemm_swiglu: inter={} (needs a positive multiple of {})", inter, kSwigluTileCols);
  TS_CHECK(k >= kSwigluStageK && k % kSwigluStageK == 0, kInvalidArgument,
           "gemm_swiglu: k={} (needs a positive multiple of {})", k, kSwigluStageK);
  for (const auto& [name, p] : {std::pair{"x", x}, std::pair{"w", w}, std::pair{"act", act}})
    TS_CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0, kInvalidArgument,
             "gemm_swiglu: {} at {} is not 16-byte aligned", name, fmt::ptr(p));
  TS_CHECK(int64_t{(m + kSwigluTileRows - 1) / kSwigluTileRows} * (inter / kSwigluTileCols) <= INT32_MAX,
           kInvalidArgument, "gemm_swiglu: m={} x inter={} makes more than 2^31 tiles", m, inter);
}

void gemm_swiglu(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* act, int32_t m, int32_t inter,
                 int32_t k, cudaStream_t stream, int variant, int blocks) {
  gemm_swiglu_check(x, w, act, m, inter, k);
  if (blocks == 0) blocks = gemm_swiglu_blocks(m, inter, variant);  // checks the variant
  TS_CHECK(variant >= 0 && variant < kSwigluVariants, kInvalidArgument, "gemm_swiglu: variant={} (0 to {})", variant,
           kSwigluVariants - 1);
  const int ctas = swiglu_variant_ctas(variant);
  TS_CHECK(blocks > 0 && blocks % ctas == 0, kInvalidArgument,
           "gemm_swiglu: blocks={} (a positive multiple of the variant's {} blocks per cluster)", blocks, ctas);
  const int split = swiglu_variant_tail_split(variant);
  const CUtensorMap w_map = matrix_map(w, int64_t{2} * inter, k, kSwigluTileCols);
  launch_gemm_swiglu(matrix_map(x, m, k, swiglu_x_box_rows(ctas)), w_map,
                     split > 1 ? matrix_map(w, int64_t{2} * inter, k, kSwigluTileCols / split) : w_map, act, m, inter,
                     k, blocks, ctas, swiglu_variant_epilogue_warps(variant), split, swiglu_variant_tail_ring(variant),
                     stream);
}

int gemm_swiglu_blocks(int32_t m, int32_t inter, int variant) {
  TS_CHECK(variant >= 0 && variant < kSwigluVariants, kInvalidArgument, "gemm_swiglu: variant={} (0 to {})", variant,
           kSwigluVariants - 1);
  int device = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return gemm_swiglu_grid_blocks(m, inter, sms, swiglu_variant_ctas(variant), swiglu_variant_epilogue_warps(variant),
                                 swiglu_variant_balanced_grid(variant), swiglu_variant_tail_split(variant),
                                 swiglu_variant_tail_ring(variant));
}

}  // namespace tessera::cuda
