// Device collectives staged through pinned host memory (see host_staged_communicator.h).
#include "parallel/host_staged_communicator.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "common/error.h"

namespace tessera::parallel {
namespace {

using Clock = std::chrono::steady_clock;
// A wait polls the stream this long before it sleeps between polls (a collective's copy is usually
// done within microseconds; the sleep keeps a long wait off the core).
constexpr auto kSpin = std::chrono::microseconds(200);
constexpr auto kSleep = std::chrono::microseconds(20);

}  // namespace

HostStagedCommunicator::HostStagedCommunicator(Communicator& host, cudaStream_t stream,
                                               std::shared_ptr<GroupHealth> health, std::chrono::milliseconds timeout)
    : host_(host), stream_(stream), health_(std::move(health)), timeout_(timeout) {
  TS_CHECK(health_ != nullptr, kInvalidArgument, "a host-staged communicator needs the group's health");
  TS_CHECK(timeout_.count() > 0, kInvalidArgument, "host-staged collective timeout {} ms is not positive",
           timeout_.count());
}

HostStagedCommunicator::~HostStagedCommunicator() {
  // The copies on the stream never wait on a peer, so they finish; cudaFreeHost waits for them.
  if (pinned_ != nullptr) cudaFreeHost(pinned_);
}

void HostStagedCommunicator::fail(const std::string& reason) {
  health_->fail(reason);
  aborted_ = true;
  TS_THROW(kUnavailable, "host-staged collectives on rank {}: {}", rank(), reason);
}

void HostStagedCommunicator::check_usable(const char* what) const {
  health_->check();
  TS_CHECK(!aborted_, kUnavailable, "{} on an aborted host-staged communicator (rank {})", what, rank());
}

void HostStagedCommunicator::abort(const std::string& reason) {
  aborted_ = true;
  host_.abort(reason);
  health_->fail(reason);
}

void HostStagedCommunicator::synchronize() {
  const auto start = Clock::now();
  const auto deadline = start + timeout_;
  for (;;) {
    const cudaError_t e = cudaStreamQuery(stream_);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) fail(fmt::format("stream error: {}", cudaGetErrorString(e)));
    if (health_->failed()) fail(fmt::format("group lost: {}", health_->reason()));
    const auto now = Clock::now();
    if (now > deadline)
      fail(fmt::format("the stream did not reach the collective within {} ms (a kernel hung)", timeout_.count()));
    if (now - start > kSpin) std::this_thread::sleep_for(kSleep);
  }
}

char* HostStagedCommunicator::scratch(size_t bytes) {
  if (bytes <= pinned_bytes_) return pinned_;
  synchronize();  // a copy back from the old scratch may still be queued
  const size_t grown = std::max(bytes, pinned_bytes_ * 2);
  if (pinned_ != nullptr) cudaFreeHost(pinned_);
  pinned_ = nullptr;
  pinned_bytes_ = 0;
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, grown);
  TS_CHECK(e == cudaSuccess, kResourceExhausted, "pinned host scratch of {} bytes for host-staged collectives: {}",
           grown, cudaGetErrorString(e));
  pinned_ = static_cast<char*>(p);
  pinned_bytes_ = grown;
  return pinned_;
}

void HostStagedCommunicator::copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* what) {
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, stream_);
  if (e != cudaSuccess) fail(fmt::format("{} copy of {} bytes: {}", what, bytes, cudaGetErrorString(e)));
}

void HostStagedCommunicator::all_reduce_sum(void* buf, size_t count, DType dtype) {
  check_usable("all_reduce_sum");
  TS_CHECK(dtype == DType::kF32 || dtype == DType::kBF16, kUnimplemented, "host-staged all_reduce_sum on {} buffers",
           dtype_name(dtype));
  if (count == 0 || world_size() == 1) return;
  const size_t bytes = count * dtype_size(dtype);
  char* h = scratch(bytes);
  copy(h, buf, bytes, cudaMemcpyDeviceToHost, "all_reduce_sum device-to-host");
  synchronize();
  if (dtype == DType::kF32) {
    host_.all_reduce_sum(h, count, DType::kF32);
  } else {  // summed in fp32, rounded once, as the interface says
    auto* b = reinterpret_cast<bf16*>(h);
    sums_.resize(count);
    for (size_t i = 0; i < count; ++i) sums_[i] = bf16_to_f32(b[i]);
    host_.all_reduce_sum(sums_.data(), count, DType::kF32);
    for (size_t i = 0; i < count; ++i) b[i] = f32_to_bf16(sums_[i]);
  }
  copy(buf, h, bytes, cudaMemcpyHostToDevice, "all_reduce_sum host-to-device");
}

void HostStagedCommunicator::all_gather(const void* send, void* recv, size_t count, DType dtype) {
  check_usable("all_gather");
  const size_t bytes = count * dtype_size(dtype);
  if (bytes == 0) return;
  const size_t all = bytes * static_cast<size_t>(world_size());
  char* h = scratch(bytes + all);
  copy(h, send, bytes, cudaMemcpyDeviceToHost, "all_gather device-to-host");
  synchronize();
  host_.all_gather(h, h + bytes, count, dtype);
  copy(recv, h + bytes, all, cudaMemcpyHostToDevice, "all_gather host-to-device");
}

void HostStagedCommunicator::broadcast(void* buf, size_t count, DType dtype, int root) {
  check_usable("broadcast");
  TS_CHECK(root >= 0 && root < world_size(), kInvalidArgument, "broadcast root {} outside 0..{}", root,
           world_size() - 1);
  const size_t bytes = count * dtype_size(dtype);
  if (bytes == 0 || world_size() == 1) return;
  char* h = scratch(bytes);
  if (rank() == root) copy(h, buf, bytes, cudaMemcpyDeviceToHost, "broadcast device-to-host");
  synchronize();  // also: no earlier copy back still reads the scratch the host overwrites now
  host_.broadcast(h, count, dtype, root);
  if (rank() != root) copy(buf, h, bytes, cudaMemcpyHostToDevice, "broadcast host-to-device");
}

void HostStagedCommunicator::barrier() {
  check_usable("barrier");
  synchronize();
  host_.barrier();
}

}  // namespace tessera::parallel
