// The gRPC door: tessera.v1.Inference on grpc++'s callback API over the shared validator and
// ServingCore; see grpc_server.h.
#include "server/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <fstream>
#include <sstream>

#include "server/grpc_generate_reactor.h"
#include "server/grpc_request_json.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera::server {

namespace {

std::string read_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  TS_CHECK(in.good(), kNotFound, "cannot read {} '{}'", flag, path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a unary handler on the calling callback thread and finishes the RPC with its status.
template <class F>
grpc::ServerUnaryReactor* unary(grpc::CallbackServerContext* ctx, F&& f) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  try {
    f();
    reactor->Finish(grpc::Status::OK);
  } catch (const Error& e) {
    reactor->Finish(to_status(e));
  } catch (const std::exception& e) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, e.what()));
  }
  return reactor;
}

}  // namespace

class InferenceService final : public v1::Inference::CallbackService {
 public:
  InferenceService(ServingCore& core, const ApiKeyAuth& auth, int max_calls)
      : core_(core), auth_(auth), max_calls_(max_calls) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* ctx,
                                                           const v1::GenerateRequest* req) override {
    return stream(ctx, [this, ctx, req] {
      check_auth(ctx);
      return core_.prepare_completion(validate_completion_request(generate_request_json(*req), core_.limits()));
    });
  }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Chat(grpc::CallbackServerContext* ctx,
                                                       const v1::ChatRequest* req) override {
    return stream(ctx, [this, ctx, req] {
      check_auth(ctx);
      return core_.prepare_chat(validate_chat_request(chat_request_json(*req), core_.limits()));
    });
  }

  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx, const v1::TokenizeRequest* req,
                                     v1::TokenizeResponse* resp) override {
    return unary(ctx, [&] {
      check_auth(ctx);
      const auto ids = core_.tokenize(validate_tokenize_request(tokenize_request_json(*req), core_.limits()));
      for (TokenId id : ids) resp->add_token_ids(id);
      resp->set_count(static_cast<int32_t>(ids.size()));
      resp->set_max_model_len(core_.limits().max_model_len);
    });
  }

  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* ctx, const v1::DetokenizeRequest* req,
                                       v1::DetokenizeResponse* resp) override {
    return unary(ctx, [&] {
      check_auth(ctx);
      resp->set_text(core_.detokenize(validate_detokenize_request(detokenize_request_json(*req), core_.limits())));
    });
  }

  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* ctx, const v1::ModelInfoRequest*,
                                      v1::ModelInfoResponse* resp) override {
    return unary(ctx, [&] {
      check_auth(ctx);
      resp->set_model(core_.model_name());
      resp->set_max_model_len(core_.limits().max_model_len);
      resp->set_vocab_size(core_.limits().vocab_size);
      for (TokenId id : core_.engine_config().eos_token_ids) resp->add_eos_token_ids(id);
      resp->set_has_chat_template(core_.has_chat_template());
      resp->set_max_n(core_.limits().max_n);
      resp->set_max_logprobs(core_.limits().max_logprobs);
    });
  }

  // Waits for posted pumps (after the server stopped, so no RPC is left).
  void join_pool() { pool_.join(); }

 private:
  void check_auth(grpc::CallbackServerContext* ctx) const {
    if (!auth_.enabled()) return;
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    TS_CHECK(it != md.end(), kUnauthenticated, "missing API key: send metadata authorization: Bearer <key>");
    TS_CHECK(auth_.allows(std::string_view(it->second.data(), it->second.size())), kUnauthenticated,
             "invalid API key");
  }

  // A streaming RPC, refused with RESOURCE_EXHAUSTED beyond max_calls_ at once.
  grpc::ServerWriteReactor<v1::GenerateResponse>* stream(grpc::CallbackServerContext* ctx,
                                                         const std::function<PreparedGeneration()>& prepare) {
    const int now = calls_.fetch_add(1) + 1;
    const int max_calls = max_calls_;
    auto admitted = [&]() -> PreparedGeneration {
      TS_CHECK(now <= max_calls, kResourceExhausted, "{} gRPC streams in flight, the most this server takes is {}",
               now, max_calls);
      return prepare();
    };
    return GenerateReactor::start(ctx, core_, pool_, admitted, [this] { calls_.fetch_sub(1); });
  }

  ServingCore& core_;
  const ApiKeyAuth& auth_;
  const int max_calls_;
  std::atomic<int> calls_{0};
  boost::asio::thread_pool pool_{2};  // converts engine outputs to responses; never blocks
};

class GrpcServerImpl {
 public:
  GrpcServerImpl(GrpcServerConfig config, ServingCore& core, const ApiKeyAuth& auth)
      : config_(std::move(config)), service_(core, auth, config_.max_concurrent_streams) {}

  void start() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    std::shared_ptr<grpc::ServerCredentials> creds;
    if (config_.tls) {
      grpc::SslServerCredentialsOptions opts;
      opts.pem_key_cert_pairs.push_back(
          {read_file(config_.tls->private_key, "--tls-key"), read_file(config_.tls->cert_chain, "--tls-cert")});
      creds = grpc::SslServerCredentials(opts);
    } else {
      creds = grpc::InsecureServerCredentials();
    }
    const bool v6 = config_.host.find(':') != std::string::npos;
    const std::string address = v6 ? fmt::format("[{}]:{}", config_.host, config_.port)
                                   : fmt::format("{}:{}", config_.host, config_.port);
    int selected = 0;
    builder.AddListeningPort(address, creds, &selected);
    builder.RegisterService(&service_);
    builder.SetMaxReceiveMessageSize(static_cast<int>(config_.max_message_bytes));
    server_ = builder.BuildAndStart();
    TS_CHECK(server_ != nullptr && selected != 0, kUnavailable, "cannot listen for gRPC on {}", address);
    port_ = static_cast<uint16_t>(selected);
    set_serving(true);
    spdlog::info("gRPC ({}) listening on {}:{}", config_.tls ? "TLS" : "plain", config_.host, port_);
  }

  void set_serving(bool serving) {
    if (!server_) return;
    if (auto* health = server_->GetHealthCheckService()) {
      health->SetServingStatus(serving);
      health->SetServingStatus("tessera.v1.Inference", serving);
    }
  }

  void stop(std::chrono::milliseconds grace) {
    if (!server_) return;
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_->Wait();
    server_.reset();
    service_.join_pool();
  }

  uint16_t port() const { return port_; }

 private:
  GrpcServerConfig config_;
  InferenceService service_;
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_ = 0;
};

GrpcServer::GrpcServer(GrpcServerConfig config, ServingCore& core, const ApiKeyAuth& auth)
    : impl_(std::make_unique<GrpcServerImpl>(std::move(config), core, auth)) {}
GrpcServer::~GrpcServer() { stop(std::chrono::milliseconds(0)); }
void GrpcServer::start() { impl_->start(); }
uint16_t GrpcServer::port() const { return impl_->port(); }
void GrpcServer::set_serving(bool serving) { impl_->set_serving(serving); }
void GrpcServer::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

}  // namespace tessera::server
