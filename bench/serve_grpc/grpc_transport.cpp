// One callback reactor per streamed request; its callbacks run on gRPC's threads, only to timestamp
// messages and, at the end, to post the finished record to the load runner's io_context.
#include "bench/serve_grpc/grpc_transport.h"

#include <boost/asio/post.hpp>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "bench/serve_grpc/grpc_status_kind.h"
#include "common/error.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera::bench {
namespace {

namespace net = boost::asio;
namespace pb = tessera::v1;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxErrorMessage = 300;

void fill_sampling(const LoadOptions& o, const WorkItem& w, pb::SamplingParameters* s) {
  s->set_temperature(static_cast<float>(o.temperature));
  s->set_max_tokens(w.output_len);
  s->set_ignore_eos(o.ignore_eos);
}

void prepare_context(const LoadOptions& o, grpc::ClientContext* ctx) {
  using Wall = std::chrono::system_clock;  // grpc++ deadlines take system_clock time points
  ctx->set_deadline(Wall::now() +
                    std::chrono::duration_cast<Wall::duration>(std::chrono::duration<double>(o.request_timeout_s)));
  if (!o.target.api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + o.target.api_key);
}

// One server-streaming call (Generate or Chat). Deletes itself after OnDone, gRPC's last callback.
class StreamCall final : public grpc::ClientReadReactor<pb::GenerateResponse> {
 public:
  StreamCall(net::io_context& io, RequestRecord record, std::function<void(RequestRecord)> done)
      : io_(io), record_(std::move(record)), done_(std::move(done)) {}

  void start_generate(pb::Inference::Stub& stub, const LoadOptions& o, const std::string& model, const WorkItem& w) {
    pb::GenerateRequest req;
    req.set_model(model);
    if (!w.prompt_ids.empty()) {
      req.mutable_token_ids()->mutable_ids()->Assign(w.prompt_ids.begin(), w.prompt_ids.end());
    } else {
      req.set_text(w.prompt_text);
    }
    fill_sampling(o, w, req.mutable_sampling());
    prepare_context(o, &ctx_);
    generate_request_ = std::move(req);
    sent_at_ = Clock::now();
    stub.async()->Generate(&ctx_, &generate_request_, this);
    begin();
  }

  void start_chat(pb::Inference::Stub& stub, const LoadOptions& o, const std::string& model, const WorkItem& w) {
    pb::ChatRequest req;
    req.set_model(model);
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content(w.prompt_text);
    fill_sampling(o, w, req.mutable_sampling());
    prepare_context(o, &ctx_);
    chat_request_ = std::move(req);
    sent_at_ = Clock::now();
    stub.async()->Chat(&ctx_, &chat_request_, this);
    begin();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows with the status
    const auto now = Clock::now();
    int32_t tokens = 0;
    bool text = false;
    for (const auto& c : response_.choices()) {
      tokens += c.token_ids_size();
      text = text || !c.text().empty();
    }
    if (response_.has_usage()) {
      usage_completion_ = response_.usage().completion_tokens();
      usage_prompt_ = response_.usage().prompt_tokens();
    }
    finished_ = finished_ || response_.finished();
    if (tokens > 0 || text) {
      if (content_messages_ == 0) {
        record_.ttft_s = std::chrono::duration<double>(now - sent_at_).count();
      } else {
        record_.itl_s.push_back(std::chrono::duration<double>(now - last_content_).count());
      }
      last_content_ = now;
      ++content_messages_;
      streamed_tokens_ += tokens;
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.e2e_s = std::chrono::duration<double>(Clock::now() - sent_at_).count();
    if (!status.ok()) {
      record_.error_kind = grpc_error_kind(status.error_code());
      record_.error_message = status.error_message().substr(0, kMaxErrorMessage);
    } else if (!finished_) {
      record_.error_kind = "stream";
      record_.error_message = "stream ended without a message marked finished";
    } else {
      record_.ok = true;
      record_.output_tokens = usage_completion_ >= 0 ? usage_completion_ : streamed_tokens_;
      record_.prompt_tokens = usage_prompt_ >= 0 ? usage_prompt_ : record_.input_len;
    }
    net::post(io_, [done = std::move(done_), record = std::move(record_)]() mutable { done(std::move(record)); });
    delete this;
  }

 private:
  void begin() {
    StartRead(&response_);
    StartCall();
  }

  net::io_context& io_;
  RequestRecord record_;
  std::function<void(RequestRecord)> done_;
  grpc::ClientContext ctx_;
  pb::GenerateRequest generate_request_;
  pb::ChatRequest chat_request_;
  pb::GenerateResponse response_;
  bool finished_ = false;
  int32_t content_messages_ = 0;
  int32_t streamed_tokens_ = 0;
  int32_t usage_completion_ = -1;
  int32_t usage_prompt_ = -1;
  Clock::time_point sent_at_, last_content_;
};

std::string channel_target(const Target& t) {
  const bool ipv6 = t.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + t.host + "]" : t.host) + ":" + t.port;
}

}  // namespace

struct GrpcTransport::Stubs {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<pb::Inference::Stub>> stubs;
};

GrpcTransport::GrpcTransport(const LoadOptions& options, int channels)
    : options_(options), stubs_(std::make_unique<Stubs>()) {
  TS_CHECK(channels >= 1, kInvalidArgument, "gRPC transport needs at least one channel, got {}", channels);
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own, not a shared one
    args.SetMaxReceiveMessageSize(-1);
    auto channel = grpc::CreateCustomChannel(channel_target(options.target), grpc::InsecureChannelCredentials(), args);
    stubs_->stubs.push_back(pb::Inference::NewStub(channel));
    stubs_->channels.push_back(std::move(channel));
  }
}

GrpcTransport::~GrpcTransport() = default;

std::string GrpcTransport::resolve_model() {
  if (!options_.target.model.empty()) return options_.target.model;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!options_.target.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.target.api_key);
  pb::ModelInfoResponse info;
  const grpc::Status status = stubs_->stubs.front()->ModelInfo(&ctx, pb::ModelInfoRequest(), &info);
  TS_CHECK(status.ok(), kUnavailable, "gRPC ModelInfo on {} failed ({}): {}", channel_target(options_.target),
           grpc_error_kind(status.error_code()), status.error_message());
  TS_CHECK(!info.model().empty(), kUnavailable, "gRPC ModelInfo on {} named no model", channel_target(options_.target));
  return info.model();
}

void GrpcTransport::start(net::io_context& io, const std::string& model, const WorkItem& item, RequestRecord record,
                          std::function<void(RequestRecord)> done) {
  auto& stub = *stubs_->stubs[next_++ % stubs_->stubs.size()];
  auto* call = new StreamCall(io, std::move(record), std::move(done));  // owns itself until OnDone
  if (options_.target.api == ApiKind::kChat) {
    call->start_chat(stub, options_, model, item);
  } else {
    call->start_generate(stub, options_, model, item);
  }
}

}  // namespace tessera::bench
