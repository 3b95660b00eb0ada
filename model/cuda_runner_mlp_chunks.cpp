// CudaRunner::mlp_in_row_chunks: a long bf16 step's MLP a run of rows at a time. A 4,096-row step's
// gate/up product is 235 MB for an 8B-shaped model, far more than the L2, so silu_mul and the down GEMM
// would read it back from DRAM; a chunk's product (1,024 rows: 59 MB) is still largely in L2 when
// they do. Rows are independent in the MLP, so chunking changes no arithmetic, only which GEMM
// algorithms (those of the chunk's row bucket) run. (Measured no faster on nvidia-h200: the option
// is off by default.) Must never be used where down does not add into the fp32 residual (decode-sized
// steps, tensor parallelism, the exact mode).
#include "common/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/silu_mul.cuh"
#include "model/cuda_runner.h"
#include "model/cuda_runner_buffers.h"

namespace tessera::cuda {

void CudaRunner::mlp_in_row_chunks(const CudaLayerWeights& w, int32_t rows) {
  const int32_t H = config_.hidden_size, I = config_.intermediate_size;
  const int32_t chunk = options_.prefill_mlp_chunk_rows, cap = options_.max_num_tokens;
  TS_ASSERT(fuses_residual(rows) && chunk > 0 && rows <= cap, "mlp_in_row_chunks: {} rows, chunk {}", rows, chunk);
  Buffers& b = *buf_;
  // Balanced chunks (sizes differ by at most one row), each more than kSkinnyMaxM rows because the
  // options demand chunk >= 2 * (kSkinnyMaxM + 1): run_accumulate is cuBLASLt only.
  const int32_t count = (rows + chunk - 1) / chunk;
  int32_t first = 0;
  for (int32_t c = 0; c < count; ++c) {
    const int32_t n = rows / count + (c < rows % count ? 1 : 0);
    const auto* x = static_cast<const bf16_t*>(b.hidden) + static_cast<int64_t>(first) * H;
    gemm_->run(x, w.gate_up, b.gate_up, n, 2 * I, H, false, stream_, cap - first);
    silu_mul(static_cast<const bf16_t*>(b.gate_up), n, I, static_cast<bf16_t*>(b.act), stream_);
    // The fp32 scratch run_accumulate names (written only if the shape were timed now) is gate_up's
    // buffer, dead once silu_mul has read it; it holds cap x 2I bf16 >= cap x H fp32.
    gemm_->run_accumulate(b.act, w.down, b.residual + static_cast<int64_t>(first) * H,
                          static_cast<float*>(b.gate_up), n, H, I, stream_, cap);
    first += n;
  }
  TS_ASSERT(first == rows, "mlp_in_row_chunks covered {} of {} rows", first, rows);
}

}  // namespace tessera::cuda
