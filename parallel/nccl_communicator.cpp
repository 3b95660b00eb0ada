// NCCL collectives with bounded waits (see nccl_communicator.h).
#include "parallel/nccl_communicator.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/error.h"
#include "parallel/plan_seal.h"

namespace tessera::parallel {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint8_t kNcclIdKind = 0x4E;  // 'N': never a plan message kind

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kF32: return ncclFloat32;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
  }
  TS_THROW(kInternal, "no NCCL type for dtype {}", static_cast<int>(t));
}

void force_nvls_off() {
  const char* v = std::getenv("NCCL_NVLS_ENABLE");
  if (v && std::strcmp(v, "0") != 0)
    spdlog::warn("NCCL_NVLS_ENABLE={} overridden to 0 (NVLink SHARP multicast stays off on these machines)", v);
  ::setenv("NCCL_NVLS_ENABLE", "0", 1);
}

}  // namespace

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(RankGroup& group, int device, cudaStream_t stream,
                                                           std::chrono::milliseconds timeout) {
  force_nvls_off();
  cudaError_t ce = cudaSetDevice(device);
  TS_CHECK(ce == cudaSuccess, kUnavailable, "cudaSetDevice({}) on rank {}: {}", device, group.rank(),
           cudaGetErrorString(ce));
  // The unique id is sealed with the launch secret like the plans: a peer on the fabric without the
  // secret cannot hand a rank another NCCL group to join.
  ncclUniqueId id{};
  PlanSeal seal(group.secret());
  if (group.rank() == 0) {
    ncclResult_t r = ncclGetUniqueId(&id);
    TS_CHECK(r == ncclSuccess, kUnavailable, "ncclGetUniqueId: {}", ncclGetErrorString(r));
    group.comm().send_message_to_all(seal.seal(kNcclIdKind, {reinterpret_cast<const uint8_t*>(&id), sizeof(id)}));
  } else {
    const auto bytes = group.comm().receive_message(0, sizeof(id) + PlanSeal::kOverhead, timeout);
    const PlanSeal::Opened opened = seal.open(bytes);
    TS_CHECK(opened.kind == kNcclIdKind && opened.body.size() == sizeof(id), kDataLoss,
             "NCCL unique id message of kind {} and {} bytes from rank 0, expected kind {} and {} bytes", opened.kind,
             opened.body.size(), kNcclIdKind, sizeof(id));
    std::memcpy(&id, opened.body.data(), sizeof(id));
  }
  std::unique_ptr<NcclCommunicator> c(
      new NcclCommunicator(group.rank(), group.world_size(), stream, group.health_ptr(), timeout));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  c->settle(ncclCommInitRankConfig(&c->comm_, group.world_size(), id, group.rank(), &config), "ncclCommInitRankConfig");
  ce = cudaMalloc(&c->barrier_buf_, sizeof(float));
  TS_CHECK(ce == cudaSuccess, kUnavailable, "cudaMalloc for the NCCL barrier: {}", cudaGetErrorString(ce));
  return c;
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) {
    // Healthy: finalize would flush; after a failure only abort is safe. Abort never blocks.
    ncclCommAbort(comm_);
  }
  if (barrier_buf_) cudaFree(barrier_buf_);
}

void NcclCommunicator::fail(const std::string& reason) {
  health_->fail(reason);
  if (comm_) {
    ncclCommAbort(comm_);
    comm_ = nullptr;
  }
  TS_THROW(kUnavailable, "NCCL on rank {}: {}", rank_, reason);
}

void NcclCommunicator::abort(const std::string& reason) {
  health_->fail(reason);
  if (comm_) {
    ncclCommAbort(comm_);
    comm_ = nullptr;
  }
}

void NcclCommunicator::settle(ncclResult_t issued, const char* what) {
  if (issued != ncclSuccess && issued != ncclInProgress) fail(fmt::format("{}: {}", what, ncclGetErrorString(issued)));
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    ncclResult_t state = ncclSuccess;
    if (!comm_) fail(fmt::format("{}: communicator already aborted", what));
    ncclCommGetAsyncError(comm_, &state);
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) fail(fmt::format("{}: {}", what, ncclGetErrorString(state)));
    if (health_->failed()) fail(fmt::format("{}: group lost: {}", what, health_->reason()));
    if (Clock::now() > deadline) fail(fmt::format("{} did not complete within {} ms", what, timeout_.count()));
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void NcclCommunicator::all_reduce_sum(void* buf, size_t count, DType dtype) {
  health_->check();
  if (!comm_) fail("all_reduce on an aborted communicator");
  settle(ncclAllReduce(buf, buf, count, nccl_type(dtype), ncclSum, comm_, stream_), "ncclAllReduce");
}

void NcclCommunicator::all_gather(const void* send, void* recv, size_t count, DType dtype) {
  health_->check();
  if (!comm_) fail("all_gather on an aborted communicator");
  settle(ncclAllGather(send, recv, count, nccl_type(dtype), comm_, stream_), "ncclAllGather");
}

void NcclCommunicator::broadcast(void* buf, size_t count, DType dtype, int root) {
  health_->check();
  if (!comm_) fail("broadcast on an aborted communicator");
  settle(ncclBroadcast(buf, buf, count, nccl_type(dtype), root, comm_, stream_), "ncclBroadcast");
}

void NcclCommunicator::barrier() {
  all_reduce_sum(barrier_buf_, 1, DType::kF32);
  synchronize();
}

void NcclCommunicator::synchronize() {
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    const cudaError_t e = cudaStreamQuery(stream_);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) fail(fmt::format("stream error: {}", cudaGetErrorString(e)));
    ncclResult_t state = ncclSuccess;
    if (comm_) ncclCommGetAsyncError(comm_, &state);
    if (state != ncclSuccess && state != ncclInProgress) fail(fmt::format("async error: {}", ncclGetErrorString(state)));
    if (health_->failed()) fail(fmt::format("group lost: {}", health_->reason()));
    if (Clock::now() > deadline)
      fail(fmt::format("collectives did not complete within {} ms (a peer GPU hung or died)", timeout_.count()));
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

}  // namespace tessera::parallel
