// Communicator: the collectives tensor parallelism needs, on buffers of fp32 or bf16 elements.
// Implementations: UcxCommunicator (host memory, processes on one or many machines),
// NcclCommunicator (device memory, built with CUDA) and HostStagedCommunicator (device memory
// staged through pinned host memory to a UcxCommunicator, built with CUDA). Every rank calls the same collectives in the
// same order. Results are bitwise identical on every rank. A lost or silent peer makes a call
// throw tessera::Error(kUnavailable) within the communicator's timeout; it never hangs.
// It must never allocate per call on a hot path beyond a reused scratch buffer, nor log per call.
#pragma once

#include <cstddef>
#include <string>

#include "common/dtype.h"

namespace tessera::parallel {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // In place: buf holds `count` elements on every rank; afterwards every rank holds their sum.
  // bf16 buffers are summed in fp32 and rounded once.
  virtual void all_reduce_sum(void* buf, size_t count, DType dtype) = 0;
  // send: `count` elements; recv: world_size() * count elements, rank r's block at r * count.
  virtual void all_gather(const void* send, void* recv, size_t count, DType dtype) = 0;
  // In place: root's `count` elements are copied to every rank.
  virtual void broadcast(void* buf, size_t count, DType dtype, int root) = 0;
  // Returns once every rank has entered the barrier.
  virtual void barrier() = 0;
  // Waits for every collective issued so far to complete (host: they already have; NCCL: they
  // were enqueued on a stream). Throws kUnavailable on a failure or timeout, never hangs.
  virtual void synchronize() {}
  // Whether a collective issued while the caller's CUDA stream is being captured into a CUDA graph
  // becomes part of the graph (NCCL: yes). Host collectives wait on the host and cannot be captured:
  // a runner must run its steps eagerly over them.
  virtual bool graph_capturable() const = 0;
  // Tears the communicator down without waiting for peers (after a failure); later calls throw
  // kUnavailable with the reason.
  virtual void abort(const std::string& reason) = 0;
};

}  // namespace tessera::parallel
