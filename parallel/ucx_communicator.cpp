// UCX tag-matching collectives (see ucx_communicator.h).
#include "parallel/ucx_communicator.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <ucp/api/ucp.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace tessera::parallel {
namespace {

using Clock = std::chrono::steady_clock;

// Tag layout: [kind:4][source rank:20][sequence:40].
constexpr uint64_t kKindCollective = 1;
constexpr uint64_t kKindMessage = 2;
constexpr uint64_t kFullMask = ~uint64_t{0};
// A wait polls UCX this long before it sleeps on the worker's event fd (in 1 ms slices: not every
// transport raises wake-up events, so a sleep is never longer than that).
constexpr int kSpinMicros = 20;

uint64_t make_tag(uint64_t kind, int src, uint64_t seq) {
  return (kind << 60) | ((static_cast<uint64_t>(src) & 0xfffff) << 40) | (seq & ((uint64_t{1} << 40) - 1));
}

std::string status_text(ucs_status_t s) { return ucs_status_string(s); }

}  // namespace

class UcxState {
 public:
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  int efd = -1;
  std::vector<ucp_ep_h> eps;
  GroupHealth* health = nullptr;
  bool aborted = false;

  struct EpErrorArg {
    UcxState* state;
    int peer;
  };
  std::vector<std::unique_ptr<EpErrorArg>> ep_args;

  static void on_ep_error(void* arg, ucp_ep_h, ucs_status_t status) {
    auto* a = static_cast<EpErrorArg*>(arg);
    a->state->health->fail(fmt::format("UCX connection to rank {} failed: {}", a->peer, status_text(status)));
  }

  void progress() {
    while (ucp_worker_progress(worker) != 0) {
    }
  }

  // Blocks until the worker has events or `ms` pass; returns at once when events are pending.
  void sleep_on_events(int ms) {
    const ucs_status_t s = ucp_worker_arm(worker);
    if (s == UCS_ERR_BUSY) return;
    if (s != UCS_OK) {
      TS_THROW(kUnavailable, "ucp_worker_arm failed: {}", status_text(s));
    }
    pollfd p{efd, POLLIN, 0};
    ::poll(&p, 1, ms);
  }
};

UcxCommunicator::UcxCommunicator(int rank, int world_size, std::shared_ptr<GroupHealth> health,
                                 std::chrono::milliseconds timeout)
    : rank_(rank), world_size_(world_size), health_(std::move(health)), timeout_(timeout), ucx_(new UcxState) {
  TS_CHECK(world_size >= 1 && world_size < (1 << 20), kInvalidArgument, "world size {} outside 1..{}", world_size,
           (1 << 20) - 1);
  TS_CHECK(rank >= 0 && rank < world_size, kInvalidArgument, "rank {} outside 0..{}", rank, world_size - 1);
  ucx_->health = health_.get();
  ucp_config_t* config = nullptr;
  ucs_status_t s = ucp_config_read(nullptr, nullptr, &config);
  TS_CHECK(s == UCS_OK, kUnavailable, "UCX configuration could not be read: {}", status_text(s));
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_ESTIMATED_NUM_EPS;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;
  params.estimated_num_eps = static_cast<size_t>(world_size);
  s = ucp_init(&params, config, &ucx_->context);
  ucp_config_release(config);
  TS_CHECK(s == UCS_OK, kUnavailable, "UCX initialisation failed: {}", status_text(s));
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SINGLE;
  s = ucp_worker_create(ucx_->context, &wp, &ucx_->worker);
  TS_CHECK(s == UCS_OK, kUnavailable, "UCX worker creation failed: {}", status_text(s));
  s = ucp_worker_get_efd(ucx_->worker, &ucx_->efd);
  TS_CHECK(s == UCS_OK, kUnavailable, "UCX worker event fd: {}", status_text(s));
}

UcxCommunicator::~UcxCommunicator() {
  if (!ucx_->worker) return;
  // Close endpoints: flush when healthy, force when the group failed; bounded either way.
  std::vector<ucs_status_ptr_t> closing;
  for (ucp_ep_h ep : ucx_->eps) {
    if (!ep) continue;
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    p.flags = (health_->failed() || ucx_->aborted) ? UCP_EP_CLOSE_FLAG_FORCE : 0;
    ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &p);
    if (r && !UCS_PTR_IS_ERR(r)) closing.push_back(r);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto r : closing) {
    while (ucp_request_check_status(r) == UCS_INPROGRESS && std::chrono::steady_clock::now() < deadline)
      ucx_->progress();
    ucp_request_free(r);
  }
  ucp_worker_destroy(ucx_->worker);
  ucp_cleanup(ucx_->context);
}

std::vector<uint8_t> UcxCommunicator::worker_address() const {
  ucp_address_t* addr = nullptr;
  size_t len = 0;
  const ucs_status_t s = ucp_worker_get_address(ucx_->worker, &addr, &len);
  TS_CHECK(s == UCS_OK, kUnavailable, "UCX worker address: {}", status_text(s));
  std::vector<uint8_t> out(reinterpret_cast<uint8_t*>(addr), reinterpret_cast<uint8_t*>(addr) + len);
  ucp_worker_release_address(ucx_->worker, addr);
  return out;
}

void UcxCommunicator::connect(const std::vector<std::vector<uint8_t>>& addresses) {
  TS_CHECK(static_cast<int>(addresses.size()) == world_size_, kInvalidArgument, "{} addresses for {} ranks",
           addresses.size(), world_size_);
  ucx_->eps.assign(world_size_, nullptr);
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    TS_CHECK(!addresses[r].empty(), kInvalidArgument, "rank {} has an empty UCX address", r);
    auto arg = std::make_unique<UcxState::EpErrorArg>(UcxState::EpErrorArg{ucx_.get(), r});
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                    UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep.address = reinterpret_cast<const ucp_address_t*>(addresses[r].data());
    ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep.err_handler.cb = &UcxState::on_ep_error;
    ep.err_handler.arg = arg.get();
    const ucs_status_t s = ucp_ep_create(ucx_->worker, &ep, &ucx_->eps[r]);
    TS_CHECK(s == UCS_OK, kUnavailable, "UCX endpoint to rank {}: {}", r, status_text(s));
    ucx_->ep_args.push_back(std::move(arg));
  }
}

namespace {

// Waits for every request; frees them. Throws kUnavailable on a failed request, a failed group or
// the deadline (cancelling what is still pending).
void wait_all(UcxState& ucx, std::vector<ucs_status_ptr_t>& reqs, std::optional<Clock::time_point> deadline,
              const std::string& what) {
  auto cancel_all = [&] {
    for (auto& r : reqs) {
      if (!r) continue;
      ucp_request_cancel(ucx.worker, r);
      ucp_request_free(r);
      r = nullptr;
    }
  };
  const auto spin_until = Clock::now() + std::chrono::microseconds(kSpinMicros);
  for (;;) {
    ucx.progress();
    bool done = true;
    for (auto& r : reqs) {
      if (!r) continue;
      const ucs_status_t s = ucp_request_check_status(r);
      if (s == UCS_INPROGRESS) {
        done = false;
        continue;
      }
      ucp_request_free(r);
      r = nullptr;
      if (s != UCS_OK) {
        cancel_all();
        TS_THROW(kUnavailable, "{} failed: {}", what, status_text(s));
      }
    }
    if (done) return;
    if (ucx.health->failed()) {
      cancel_all();
      ucx.health->check();
    }
    if (deadline && Clock::now() > *deadline) {
      cancel_all();
      const std::string why = fmt::format("{} timed out waiting for a peer rank", what);
      ucx.health->fail(why);
      TS_THROW(kUnavailable, "{}", why);
    }
    if (Clock::now() > spin_until) ucx.sleep_on_events(1);
  }
}

void check_immediate(ucs_status_ptr_t r, const char* what, int peer) {
  if (UCS_PTR_IS_ERR(r))
    TS_THROW(kUnavailable, "UCX {} with rank {} failed: {}", what, peer, status_text(UCS_PTR_STATUS(r)));
}

ucs_status_ptr_t post_send(UcxState& ucx, int peer, const void* buf, size_t bytes, uint64_t tag) {
  ucp_request_param_t p{};
  ucs_status_ptr_t r = ucp_tag_send_nbx(ucx.eps[peer], buf, bytes, tag, &p);
  check_immediate(r, "send", peer);
  return r;
}

ucs_status_ptr_t post_recv(UcxState& ucx, int peer, void* buf, size_t bytes, uint64_t tag) {
  ucp_request_param_t p{};
  ucs_status_ptr_t r = ucp_tag_recv_nbx(ucx.worker, buf, bytes, tag, kFullMask, &p);
  check_immediate(r, "receive", peer);
  return r;
}

}  // namespace

void UcxCommunicator::exchange(const void* send, size_t send_bytes, int to, void* recv, size_t recv_bytes, int from,
                               const char* what) {
  health_->check();
  const uint64_t seq = op_seq_++;
  std::vector<ucs_status_ptr_t> reqs;
  reqs.push_back(post_recv(*ucx_, from, recv, recv_bytes, make_tag(kKindCollective, from, seq)));
  reqs.push_back(post_send(*ucx_, to, send, send_bytes, make_tag(kKindCollective, rank_, seq)));
  wait_all(*ucx_, reqs, Clock::now() + timeout_, fmt::format("{} on rank {} (from rank {})", what, rank_, from));
}

void UcxCommunicator::all_reduce_sum(void* buf, size_t count, DType dtype) {
  health_->check();
  if (world_size_ == 1 || count == 0) return;
  if (dtype == DType::kF32) return all_reduce_f32(static_cast<float*>(buf), count);
  TS_CHECK(dtype == DType::kBF16, kUnimplemented, "all_reduce_sum on {} buffers", dtype_name(dtype));
  std::vector<float> f(count);
  auto* b = static_cast<bf16*>(buf);
  for (size_t i = 0; i < count; ++i) f[i] = bf16_to_f32(b[i]);
  all_reduce_f32(f.data(), count);
  for (size_t i = 0; i < count; ++i) b[i] = f32_to_bf16(f[i]);
}

void UcxCommunicator::all_reduce_f32(float* buf, size_t count) {
  if (count * sizeof(float) <= kDirectAllReduceBytes || count < static_cast<size_t>(world_size_))
    direct_all_reduce(buf, count);
  else
    ring_all_reduce(buf, count);
}

void UcxCommunicator::direct_all_reduce(float* buf, size_t count) {
  const size_t bytes = count * sizeof(float);
  scratch_.resize(count * world_size_);
  const uint64_t seq = op_seq_++;
  std::vector<ucs_status_ptr_t> reqs;
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    reqs.push_back(post_recv(*ucx_, r, scratch_.data() + r * count, bytes, make_tag(kKindCollective, r, seq)));
  }
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    reqs.push_back(post_send(*ucx_, r, buf, bytes, make_tag(kKindCollective, rank_, seq)));
  }
  std::memcpy(scratch_.data() + rank_ * count, buf, bytes);
  wait_all(*ucx_, reqs, Clock::now() + timeout_, fmt::format("all_reduce of {} floats on rank {}", count, rank_));
  // Sum in rank order so every rank computes the same bits.
  for (size_t i = 0; i < count; ++i) {
    float s = scratch_[i];
    for (int r = 1; r < world_size_; ++r) s += scratch_[r * count + i];
    buf[i] = s;
  }
}

void UcxCommunicator::ring_all_reduce(float* buf, size_t count) {
  const int P = world_size_;
  const int right = (rank_ + 1) % P, left = (rank_ + P - 1) % P;
  auto chunk_begin = [&](int c) { return count * static_cast<size_t>(c) / P; };
  auto chunk_size = [&](int c) { return chunk_begin(c + 1) - chunk_begin(c); };
  scratch_.resize(count / P + 1);
  // Reduce-scatter: after P-1 steps this rank holds the full sum of chunk (rank + 1) % P.
  for (int s = 0; s < P - 1; ++s) {
    const int send_c = (rank_ - s + P) % P, recv_c = (rank_ - s - 1 + 2 * P) % P;
    exchange(buf + chunk_begin(send_c), chunk_size(send_c) * sizeof(float), right, scratch_.data(),
             chunk_size(recv_c) * sizeof(float), left, "all_reduce (reduce-scatter)");
    float* dst = buf + chunk_begin(recv_c);
    for (size_t i = 0; i < chunk_size(recv_c); ++i) dst[i] += scratch_[i];
  }
  // All-gather the reduced chunks around the ring.
  for (int s = 0; s < P - 1; ++s) {
    const int send_c = (rank_ + 1 - s + P) % P, recv_c = (rank_ - s + P) % P;
    exchange(buf + chunk_begin(send_c), chunk_size(send_c) * sizeof(float), right, buf + chunk_begin(recv_c),
             chunk_size(recv_c) * sizeof(float), left, "all_reduce (all-gather)");
  }
}

void UcxCommunicator::all_gather(const void* send, void* recv, size_t count, DType dtype) {
  health_->check();
  const size_t bytes = count * dtype_size(dtype);
  auto* out = static_cast<uint8_t*>(recv);
  std::memmove(out + rank_ * bytes, send, bytes);
  if (world_size_ == 1 || bytes == 0) return;
  const uint64_t seq = op_seq_++;
  std::vector<ucs_status_ptr_t> reqs;
  for (int r = 0; r < world_size_; ++r)
    if (r != rank_) reqs.push_back(post_recv(*ucx_, r, out + r * bytes, bytes, make_tag(kKindCollective, r, seq)));
  for (int r = 0; r < world_size_; ++r)
    if (r != rank_)
      reqs.push_back(post_send(*ucx_, r, out + rank_ * bytes, bytes, make_tag(kKindCollective, rank_, seq)));
  wait_all(*ucx_, reqs, Clock::now() + timeout_, fmt::format("all_gather of {} bytes on rank {}", bytes, rank_));
}

void UcxCommunicator::broadcast(void* buf, size_t count, DType dtype, int root) {
  health_->check();
  TS_CHECK(root >= 0 && root < world_size_, kInvalidArgument, "broadcast root {} outside 0..{}", root,
           world_size_ - 1);
  const size_t bytes = count * dtype_size(dtype);
  if (world_size_ == 1 || bytes == 0) return;
  const uint64_t seq = op_seq_++;
  std::vector<ucs_status_ptr_t> reqs;
  if (rank_ == root) {
    for (int r = 0; r < world_size_; ++r)
      if (r != rank_) reqs.push_back(post_send(*ucx_, r, buf, bytes, make_tag(kKindCollective, rank_, seq)));
  } else {
    reqs.push_back(post_recv(*ucx_, root, buf, bytes, make_tag(kKindCollective, root, seq)));
  }
  wait_all(*ucx_, reqs, Clock::now() + timeout_, fmt::format("broadcast of {} bytes on rank {}", bytes, rank_));
}

void UcxCommunicator::barrier() {
  std::vector<uint16_t> one(1, 1), all(world_size_);
  all_gather(one.data(), all.data(), 1, DType::kBF16);  // any 2-byte payload: only arrival matters
}

void UcxCommunicator::abort(const std::string& reason) {
  ucx_->aborted = true;
  health_->fail(reason);
}

void UcxCommunicator::send_message_to_all(std::span<const uint8_t> message) {
  health_->check();
  const uint64_t seq = msg_seq_++;
  std::vector<ucs_status_ptr_t> reqs;
  for (int r = 0; r < world_size_; ++r)
    if (r != rank_)
      reqs.push_back(post_send(*ucx_, r, message.data(), message.size(), make_tag(kKindMessage, rank_, seq)));
  wait_all(*ucx_, reqs, Clock::now() + timeout_, fmt::format("sending a {}-byte message to every rank", message.size()));
}

std::vector<uint8_t> UcxCommunicator::receive_message(int root, size_t max_bytes,
                                                      std::optional<std::chrono::milliseconds> timeout) {
  health_->check();
  const uint64_t tag = make_tag(kKindMessage, root, msg_seq_++);
  const std::optional<Clock::time_point> deadline =
      timeout ? std::optional<Clock::time_point>(Clock::now() + *timeout) : std::nullopt;
  ucp_tag_recv_info_t info{};
  ucp_tag_message_h msg = nullptr;
  const auto spin_until = Clock::now() + std::chrono::microseconds(kSpinMicros);
  for (;;) {
    ucx_->progress();
    msg = ucp_tag_probe_nb(ucx_->worker, tag, kFullMask, 1, &info);
    if (msg) break;
    health_->check();
    if (deadline && Clock::now() > *deadline)
      TS_THROW(kUnavailable, "rank {}: no message from rank {} within {} ms", rank_, root, timeout->count());
    if (Clock::now() > spin_until) ucx_->sleep_on_events(1);
  }
  // An oversized message is refused before allocating; the group cannot continue past it.
  if (info.length > max_bytes) {
    const std::string why =
        fmt::format("message of {} bytes from rank {} is over the limit {}", info.length, root, max_bytes);
    health_->fail(why);
    TS_THROW(kDataLoss, "{}", why);
  }
  std::vector<uint8_t> out(info.length);
  ucp_request_param_t p{};
  std::vector<ucs_status_ptr_t> reqs{ucp_tag_msg_recv_nbx(ucx_->worker, out.data(), info.length, msg, &p)};
  check_immediate(reqs[0], "message receive", root);
  wait_all(*ucx_, reqs, Clock::now() + timeout_, fmt::format("receiving a {}-byte message", info.length));
  return out;
}

}  // namespace tessera::parallel
