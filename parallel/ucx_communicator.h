// UcxCommunicator: the host-memory Communicator over UCX's tag-matching API (ucp). UCX picks the
// transport: shared memory and TCP between processes on loopback here, InfiniBand verbs between
// machines in production. Built in two phases: construct (creates the UCX worker, whose address
// goes into the rendezvous), then connect() with every rank's address. Also carries rank 0's
// variable-length messages (StepPlans) to the other ranks.
// Collectives: small buffers go directly to every peer and are summed in rank order; large ones
// use a ring (reduce-scatter then all-gather). Either way every rank ends with identical bits.
// Every wait polls GroupHealth and a deadline: a dead or silent peer throws kUnavailable.
// It must never be used from two threads at once (the UCX worker is single-threaded).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/group_health.h"

namespace tessera::parallel {

class UcxState;

class UcxCommunicator final : public Communicator {
 public:
  // timeout: the longest one collective may wait for its peers.
  UcxCommunicator(int rank, int world_size, std::shared_ptr<GroupHealth> health,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));
  ~UcxCommunicator() override;
  UcxCommunicator(const UcxCommunicator&) = delete;
  UcxCommunicator& operator=(const UcxCommunicator&) = delete;

  // This rank's UCX worker address, for the rendezvous.
  std::vector<uint8_t> worker_address() const;
  // Connects to every other rank; addresses[r] is rank r's worker address.
  void connect(const std::vector<std::vector<uint8_t>>& addresses);

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  void all_reduce_sum(void* buf, size_t count, DType dtype) override;
  void all_gather(const void* send, void* recv, size_t count, DType dtype) override;
  void broadcast(void* buf, size_t count, DType dtype, int root) override;
  void barrier() override;
  void abort(const std::string& reason) override;
  bool graph_capturable() const override { return false; }  // host memory, waited on by the host

  // Root: sends `message` to every other rank. Others: receives the next message from root
  // (up to max_bytes), waiting up to `timeout` (nullopt: as long as the group is healthy).
  void send_message_to_all(std::span<const uint8_t> message);
  std::vector<uint8_t> receive_message(int root, size_t max_bytes, std::optional<std::chrono::milliseconds> timeout);

  // Bytes at or under which all_reduce_sum sends whole buffers to every peer instead of the ring.
  static constexpr size_t kDirectAllReduceBytes = 64 * 1024;

 private:
  void all_reduce_f32(float* buf, size_t count);
  void direct_all_reduce(float* buf, size_t count);
  void ring_all_reduce(float* buf, size_t count);
  void exchange(const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes, int from,
                const char* what);

  int rank_;
  int world_size_;
  std::shared_ptr<GroupHealth> health_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<UcxState> ucx_;
  uint64_t op_seq_ = 0;   // collective sequence number, the same on every rank
  uint64_t msg_seq_ = 0;  // message sequence number from the root
  std::vector<float> scratch_;
};

}  // namespace tessera::parallel
