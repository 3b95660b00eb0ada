// ServerStack: wiring and drain of both doors; see server_stack.h.
#include "server/server_stack.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace tessera::server {

ServerStack::ServerStack(ServerStackOptions options, Engine& engine, std::shared_ptr<const Tokenizer> tokenizer,
                         std::shared_ptr<const ChatTemplate> chat, MetricsRegistry& metrics)
    : options_(std::move(options)), engine_(engine) {
  core_ = std::make_unique<ServingCore>(engine_, std::move(tokenizer), std::move(chat), options_.limits, metrics);
  router_ = std::make_unique<HttpRouter>(*core_, options_.auth, metrics);
  http_ = std::make_unique<HttpServer>(options_.http, *router_);
  if (options_.enable_grpc) grpc_ = std::make_unique<GrpcServer>(options_.grpc, *core_, options_.auth);
}

ServerStack::~ServerStack() { stop(); }

void ServerStack::start() {
  http_->start();
  if (grpc_) grpc_->start();
}

bool ServerStack::drain(std::chrono::milliseconds timeout) {
  engine_.begin_drain();
  if (grpc_) grpc_->set_serving(false);
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!engine_.drained() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool clean = engine_.drained();
  if (!clean) spdlog::warn("drain timeout ({} ms) reached with requests still running; cancelling them", timeout.count());
  // Let the last outputs reach their clients before the doors close.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop();
  return clean;
}

void ServerStack::stop() {
  if (grpc_) grpc_->stop(std::chrono::milliseconds(0));
  if (http_) http_->stop();
}

}  // namespace tessera::server
