// HostStagedCommunicator: the Communicator for CUDA ranks whose collectives cannot run on NCCL
// (`--tp-backend ucx` with `--device cuda`): NCCL cannot reach the peers, or several ranks share one
// GPU, which NCCL refuses ("Duplicate GPU detected"). Each collective on device buffers copies them
// into a reused pinned host scratch on the runner's stream, waits for the stream (bounded, polling
// like NcclCommunicator::synchronize), runs the host collective of the group's UcxCommunicator
// (bf16 summed in fp32 and rounded once; the same bits on every rank) and enqueues the copy back.
// Slow by design (every collective is a device round trip through host memory) and never capturable
// into a CUDA graph, so a runner over it runs its steps eagerly.
// It must never own the host communicator (the group's, which also carries the plans), never wait
// on the stream without a deadline, and never be used from two threads at once.
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/group_health.h"

namespace tessera::parallel {

class HostStagedCommunicator final : public Communicator {
 public:
  // host: a host-memory communicator that outlives this one (the group's UcxCommunicator); stream:
  // the runner's stream every staging copy is enqueued on; timeout: the longest wait for the stream.
  HostStagedCommunicator(Communicator& host, cudaStream_t stream, std::shared_ptr<GroupHealth> health,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));
  ~HostStagedCommunicator() override;
  HostStagedCommunicator(const HostStagedCommunicator&) = delete;
  HostStagedCommunicator& operator=(const HostStagedCommunicator&) = delete;

  int rank() const override { return host_.rank(); }
  int world_size() const override { return host_.world_size(); }
  // buf / send / recv are device pointers (or any memory cudaMemcpyAsync reaches).
  void all_reduce_sum(void* buf, size_t count, DType dtype) override;
  void all_gather(const void* send, void* recv, size_t count, DType dtype) override;
  void broadcast(void* buf, size_t count, DType dtype, int root) override;
  void barrier() override;
  // Waits for the stream (the copies back of every collective so far), bounded by the timeout and
  // the group's health; throws kUnavailable (failing the group) on a stream error or the deadline.
  void synchronize() override;
  void abort(const std::string& reason) override;
  bool graph_capturable() const override { return false; }

  // Bytes of pinned scratch held (grows to the largest collective, then is reused).
  size_t scratch_bytes() const { return pinned_bytes_; }

 private:
  void check_usable(const char* what) const;
  // Pinned scratch of at least `bytes` (waits for the stream before replacing a smaller one).
  char* scratch(size_t bytes);
  void copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* what);
  [[noreturn]] void fail(const std::string& reason);

  Communicator& host_;
  cudaStream_t stream_;
  std::shared_ptr<GroupHealth> health_;
  std::chrono::milliseconds timeout_;
  char* pinned_ = nullptr;
  size_t pinned_bytes_ = 0;
  std::vector<float> sums_;  // bf16 all-reduce: the fp32 values the host sums (reused)
  bool aborted_ = false;
};

}  // namespace tessera::parallel
