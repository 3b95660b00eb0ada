// NcclCommunicator: the Communicator for device memory, over NCCL (NVLink inside a node or rack,
// InfiniBand between them). Collectives are enqueued on the communicator's CUDA stream and return;
// synchronize() waits for them, polling the stream, ncclCommGetAsyncError, the group's health and
// a deadline. The communicator is created non-blocking, so no NCCL call can hang the process: on
// any failure or timeout it is aborted (ncclCommAbort) and calls throw kUnavailable.
// The NCCL unique id travels from rank 0 to every rank over the UCX message channel, sealed with the
// launch secret (PlanSeal).
// NCCL_NVLS_ENABLE is forced to 0 before NCCL initialises (NVLink SHARP multicast stays off).
// Built only with the CUDA backend. It must never be used from two threads at once.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <memory>
#include <string>

#include "parallel/communicator.h"
#include "parallel/rank_group.h"

namespace tessera::parallel {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over the group: every rank calls it with its own CUDA device and stream.
  static std::unique_ptr<NcclCommunicator> create(RankGroup& group, int device, cudaStream_t stream,
                                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  void all_reduce_sum(void* buf, size_t count, DType dtype) override;
  void all_gather(const void* send, void* recv, size_t count, DType dtype) override;
  void broadcast(void* buf, size_t count, DType dtype, int root) override;
  void barrier() override;
  void synchronize() override;
  void abort(const std::string& reason) override;
  bool graph_capturable() const override { return true; }  // enqueued on the stream, captured with it

 private:
  NcclCommunicator(int rank, int world_size, cudaStream_t stream, std::shared_ptr<GroupHealth> health,
                   std::chrono::milliseconds timeout)
      : rank_(rank), world_size_(world_size), stream_(stream), health_(std::move(health)), timeout_(timeout) {}
  // Waits for a non-blocking NCCL call to leave ncclInProgress; aborts and throws on error.
  void settle(ncclResult_t issued, const char* what);
  [[noreturn]] void fail(const std::string& reason);

  int rank_;
  int world_size_;
  cudaStream_t stream_;
  std::shared_ptr<GroupHealth> health_;
  std::chrono::milliseconds timeout_;
  ncclComm_t comm_ = nullptr;
  void* barrier_buf_ = nullptr;
};

}  // namespace tessera::parallel
