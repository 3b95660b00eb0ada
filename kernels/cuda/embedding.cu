// Embedding lookup: one block per token, 16-byte copies of the table row (bf16 or fp32 elements).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/pdl.cuh"

namespace tessera::cuda {
namespace {

template <typename T>
__global__ void embedding_kernel(const int32_t* __restrict__ ids, const T* __restrict__ table, int32_t vocab,
                                 int32_t hidden, T* __restrict__ out) {
  pdl_trigger();  // lets the next (PDL-launched) kernel start
  const int32_t t = blockIdx.x;
  const int32_t id = ids[t];
  pdl_wait();  // when PDL-launched (the row gather): the table is the previous kernel's output
  const bool valid = id >= 0 && id < vocab;
  const int32_t vecs = hidden / static_cast<int32_t>(16 / sizeof(T));  // hidden % 8 == 0 (checked by the caller)
  const uint4* src = reinterpret_cast<const uint4*>(table + static_cast<int64_t>(valid ? id : 0) * hidden);
  uint4* dst = reinterpret_cast<uint4*>(out + static_cast<int64_t>(t) * hidden);
  for (int32_t i = threadIdx.x; i < vecs; i += blockDim.x) dst[i] = valid ? src[i] : make_uint4(0, 0, 0, 0);
}

template <typename T>
void launch(const int32_t* ids, int32_t num_tokens, const T* table, int32_t vocab, int32_t hidden, T* out,
            cudaStream_t stream, bool pdl) {
  if (num_tokens == 0) return;
  if (pdl)
    launch_pdl(embedding_kernel<T>, num_tokens, 256, 0, stream, ids, table, vocab, hidden, out);
  else
    embedding_kernel<T><<<num_tokens, 256, 0, stream>>>(ids, table, vocab, hidden, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void embedding(const int32_t* ids, int32_t num_tokens, const __nv_bfloat16* table, int32_t vocab, int32_t hidden,
               __nv_bfloat16* out, cudaStream_t stream, bool pdl) {
  launch(ids, num_tokens, table, vocab, hidden, out, stream, pdl);
}

void embedding(const int32_t* ids, int32_t num_tokens, const float* table, int32_t vocab, int32_t hidden, float* out,
               cudaStream_t stream, bool pdl) {
  launch(ids, num_tokens, table, vocab, hidden, out, stream, pdl);
}

}  // namespace tessera::cuda
