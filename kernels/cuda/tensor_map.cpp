// Tensor maps of row-major bf16 matrices and the driver's encoder (tensor_map.h).
#include "kernels/cuda/tensor_map.h"

#include <cuda_runtime.h>

#include <cstdio>

#include "kernels/cuda/cuda_check.h"

namespace tessera::cuda {

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || fn == nullptr)
      throw_cuda_error(cudaErrorNotSupported, "cuTensorMapEncodeTiled: not found in the driver", __FILE__, __LINE__);
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

CUtensorMap matrix_map(const __nv_bfloat16* p, int64_t rows, int64_t cols, uint32_t box_rows) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {64, box_rows}, element_strides[2] = {1, 1};
  const CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<__nv_bfloat16*>(p),
                                          dims, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                          CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    char what[200];
    std::snprintf(what, sizeof what, "cuTensorMapEncodeTiled failed (CUresult %d) for matrix %p, %lld x %lld, box rows %u",
                  static_cast<int>(r), static_cast<const void*>(p), static_cast<long long>(rows),
                  static_cast<long long>(cols), box_rows);
    throw_cuda_error(cudaErrorInvalidValue, what, __FILE__, __LINE__);
  }
  return map;
}

}  // namespace tessera::cuda
