// Tensor maps of the paged K/V caches (kv_cache_tensor_map.h).
#include "kernels/cuda/kv_cache_tensor_map.h"

#include "kernels/cuda/tensor_map.h"

namespace tessera::cuda {

CUtensorMap cache_map(const __nv_bfloat16* cache, int32_t hkv, int32_t head_dim) {
  // Rows are cache slots (2^31: the kernels never address past the caller's blocks), hkv x head_dim
  // elements each, read 16 slots x 64 elements at a time.
  return matrix_map(cache, int64_t{1} << 31, static_cast<int64_t>(hkv) * head_dim, 16);
}

}  // namespace tessera::cuda
