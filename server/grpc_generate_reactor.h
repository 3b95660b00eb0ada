// GenerateReactor: one streaming Generate/Chat RPC on the gRPC callback API, event-driven like the
// HTTP door: no thread waits on a request. The engine's notifier only posts a pump to the door's
// small thread pool; a pump pops the request's outputs, converts one to a GenerateResponse and
// starts its write; the write's completion pumps again. Client cancellation and the RPC deadline
// cancel the engine request (its KV is freed at the next step); an engine error ends the RPC with
// its status. Owns itself through a shared_ptr it drops in OnDone.
// It must never have two writes in flight, call Finish twice, or leave an engine request running
// after its RPC ended.
#pragma once

#include <grpcpp/grpcpp.h>

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/engine.h"
#include "server/serving_core.h"
#include "tessera/v1/inference.pb.h"

namespace tessera::server {

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                              public std::enable_shared_from_this<GenerateReactor> {
 public:
  // Starts the RPC: `prepare` validates and builds the generation (it may throw tessera::Error,
  // which ends the RPC with that status). on_done runs once when the RPC is over.
  static GenerateReactor* start(grpc::CallbackServerContext* ctx, ServingCore& core,
                                boost::asio::thread_pool& pool, const std::function<PreparedGeneration()>& prepare,
                                std::function<void()> on_done);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  GenerateReactor(grpc::CallbackServerContext* ctx, ServingCore& core, boost::asio::thread_pool& pool,
                  std::function<void()> on_done);
  void begin(const std::function<PreparedGeneration()>& prepare);
  void schedule_pump();
  void pump();
  // Under mu_: ends the RPC now, or after the write in flight.
  void finish_locked(const grpc::Status& status);
  void fill(const RequestOutput& out, v1::GenerateResponse* resp, bool* deadline_hit) const;

  grpc::CallbackServerContext* ctx_;
  ServingCore& core_;
  boost::asio::thread_pool& pool_;
  std::function<void()> on_done_;
  std::shared_ptr<GenerateReactor> self_;  // keeps the reactor alive until OnDone
  std::shared_ptr<RequestStream> stream_;
  TokenText text_;
  std::vector<TokenId> prompt_;
  std::string request_id_;
  std::chrono::system_clock::time_point deadline_;

  std::mutex mu_;
  std::atomic<bool> pump_posted_{false};
  bool writing_ = false;
  bool last_written_ = false;  // the write in flight carries the final output
  bool finished_ = false;
  std::optional<grpc::Status> finish_after_write_;
  v1::GenerateResponse resp_;
};

}  // namespace tessera::server
