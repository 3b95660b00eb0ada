// The two ceilings every GPU benchmark figure is compared with, measured in the same run: device-
// to-device copy bandwidth (bytes read + written per second) and the bf16 matmul rate cuBLASLt
// reaches on 8192³ with random data. Medians of timed repeats after warm-up.
#pragma once

#include <cuda_runtime.h>

namespace tessera::bench {

struct DeviceLimits {
  double copy_bytes_per_s = 0;  // read + written
  double matmul_flops = 0;      // bf16 in, fp32 accumulate: the bound benchmarks report against
  // With `sustained`: the same GEMM timed over ~0.2 s after ~0.2 s of the same load, the rate the
  // board holds once its power limit bites (context for long compute-bound runs such as a prefill;
  // never the bound itself). 0 when not measured.
  double matmul_flops_sustained = 0;
};

DeviceLimits measure_device_limits(cudaStream_t stream, bool sustained = false);

}  // namespace tessera::bench
