// Elementwise and normalisation kernels of a Llama-family layer on the CPU, fp32 in and out:
// RMSNorm, rotary embedding (rotate-half layout), SiLU-gated product, embedding gather.
// Plain pointers and sizes; they never allocate or read configuration. Rows split over the pool.
#pragma once

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight; rows of `dim` with stride `stride`
// (elements between row starts, for both x and out). out may equal x.
void rms_norm(const float* x, int64_t rows, int64_t dim, int64_t stride, const float* weight, float eps, float* out,
              ThreadPool& pool);

// Rotates `heads` heads of `head_dim` in each row of x ([rows, row_stride]) in place, at the
// row's position, Hugging Face's rotate-half layout: pairs (i, i + head_dim/2) with inv_freq[i].
void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int32_t* positions,
          const double* inv_freq, ThreadPool& pool);

// out[i] = silu(gate[i]) * up[i] over n elements (SwiGLU). out may equal gate.
void silu_mul(const float* gate, const float* up, int64_t n, float* out, ThreadPool& pool);

// out[r, :] = table[ids[r], :] converted to fp32; table is [vocab, dim] in dtype.
void embedding(const void* table, DType dtype, int64_t dim, const int32_t* ids, int64_t rows, float* out,
               ThreadPool& pool);

// y[i] += x[i] over n elements.
void add_inplace(float* y, const float* x, int64_t n, ThreadPool& pool);

}  // namespace tessera::cpu
