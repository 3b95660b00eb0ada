// Tensor maps of the paged K/V caches (kv_cache_tensor_map.h).
#include "kernels/cuda/kv_cache_tensor_map.h"

#include <cstdio>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/tensor_map.h"

namespace tessera::cuda {

CUtensorMap cache_map(const __nv_bfloat16* cache, int32_t hkv, int32_t head_dim) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(hkv) * head_dim, cuuint64_t{1} << 31};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(hkv) * head_dim * 2};
  const cuuint32_t box[2] = {64, 16}, element_strides[2] = {1, 1};
  const CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<__nv_bfloat16*>(cache),
                                          dims, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                          CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    char what[160];
    std::snprintf(what, sizeof what, "cuTensorMapEncodeTiled failed (CUresult %d) for cache %p, hkv %d, head_dim %d",
                  static_cast<int>(r), static_cast<const void*>(cache), hkv, head_dim);
    throw_cuda_error(cudaErrorInvalidValue, what, __FILE__, __LINE__);
  }
  return map;
}

}  // namespace tessera::cuda
