// A streaming Generate/Chat RPC driven by engine notifications (see grpc_generate_reactor.h).
#include "server/grpc_generate_reactor.h"

#include <boost/asio/post.hpp>

#include "server/grpc_request_json.h"

namespace tessera::server {
namespace {

v1::FinishReason proto_finish(FinishReason r) {
  return r == FinishReason::kLength ? v1::FINISH_REASON_LENGTH : v1::FINISH_REASON_STOP;
}

std::chrono::steady_clock::time_point to_steady(std::chrono::system_clock::time_point t) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(t - std::chrono::system_clock::now());
}

void fill_logprob(const SampledToken& t, const TokenText& text, v1::TokenLogprob* out) {
  out->set_token_id(t.token);
  out->set_token(text(t.token));
  out->set_logprob(t.logprob);
  for (const auto& alt : t.top) {
    auto* top = out->add_top();
    top->set_token_id(alt.token);
    top->set_token(text(alt.token));
    top->set_logprob(alt.logprob);
  }
}

void fill_prompt_logprobs(const PromptLogprobs& plp, const std::vector<TokenId>& prompt, const TokenText& text,
                          v1::GenerateResponse* resp) {
  for (size_t pos = 0; pos < prompt.size(); ++pos) {
    auto* e = resp->add_prompt_logprobs();
    e->set_token_id(prompt[pos]);
    e->set_token(text(prompt[pos]));
    if (pos < static_cast<size_t>(plp.first_position)) continue;
    const size_t i = pos - static_cast<size_t>(plp.first_position);
    if (i >= plp.chosen.size()) continue;
    e->set_logprob(plp.chosen[i].logprob);
    if (i < plp.top.size()) {
      for (const auto& alt : plp.top[i]) {
        auto* top = e->add_top();
        top->set_token_id(alt.token);
        top->set_token(text(alt.token));
        top->set_logprob(alt.logprob);
      }
    }
  }
}

}  // namespace

GenerateReactor* GenerateReactor::start(grpc::CallbackServerContext* ctx, ServingCore& core,
                                        boost::asio::thread_pool& pool,
                                        const std::function<PreparedGeneration()>& prepare,
                                        std::function<void()> on_done) {
  auto r = std::shared_ptr<GenerateReactor>(new GenerateReactor(ctx, core, pool, std::move(on_done)));
  r->self_ = r;
  r->begin(prepare);
  return r.get();
}

GenerateReactor::GenerateReactor(grpc::CallbackServerContext* ctx, ServingCore& core, boost::asio::thread_pool& pool,
                                 std::function<void()> on_done)
    : ctx_(ctx), core_(core), pool_(pool), on_done_(std::move(on_done)), deadline_(ctx->deadline()) {}

void GenerateReactor::begin(const std::function<PreparedGeneration()>& prepare) {
  std::lock_guard<std::mutex> lock(mu_);
  try {
    PreparedGeneration prepared = prepare();
    TS_ASSERT(prepared.requests.size() == 1, "gRPC requests carry one prompt, got {}", prepared.requests.size());
    if (deadline_ != std::chrono::system_clock::time_point::max()) {
      prepared.requests[0].deadline = to_steady(deadline_);
    }
    prompt_ = prepared.requests[0].prompt_token_ids;
    request_id_ = prepared.shape.id;
    text_ = core_.token_text();
    stream_ = core_.submit(prepared)[0];
  } catch (const Error& e) {
    finish_locked(to_status(e));
    return;
  } catch (const std::exception& e) {
    finish_locked(grpc::Status(grpc::StatusCode::INTERNAL, e.what()));
    return;
  }
  std::weak_ptr<GenerateReactor> weak = self_;
  stream_->set_notifier([weak] {
    if (auto r = weak.lock()) r->schedule_pump();
  });
  schedule_pump();  // outputs may have arrived before the notifier was set
}

// Called on the engine thread: never blocks, coalesces notifications into one posted pump.
void GenerateReactor::schedule_pump() {
  if (pump_posted_.exchange(true)) return;
  std::weak_ptr<GenerateReactor> weak = self_;
  boost::asio::post(pool_, [weak] {
    if (auto r = weak.lock()) r->pump();
  });
}

void GenerateReactor::pump() {
  pump_posted_.store(false);
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || writing_ || finish_after_write_) return;
  std::optional<RequestOutput> out = stream_->try_pop();
  if (!out) return;
  if (out->error) {
    finish_locked(to_status(*out->error));
    return;
  }
  resp_.Clear();
  bool deadline_hit = false;
  fill(*out, &resp_, &deadline_hit);
  if (deadline_hit) {
    finish_locked(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded; generation stopped"));
    return;
  }
  writing_ = true;
  last_written_ = out->finished;
  StartWrite(&resp_);
}

void GenerateReactor::fill(const RequestOutput& out, v1::GenerateResponse* resp, bool* deadline_hit) const {
  resp->set_request_id(request_id_);
  for (const ChoiceDelta& d : out.choices) {
    auto* c = resp->add_choices();
    c->set_index(d.index);
    for (TokenId t : d.token_ids) c->add_token_ids(t);
    c->set_text(d.text);
    for (const auto& lp : d.logprobs) fill_logprob(lp, text_, c->add_logprobs());
    if (d.finish_reason) {
      *deadline_hit = *deadline_hit || *d.finish_reason == FinishReason::kDeadline;
      c->set_finish_reason(proto_finish(*d.finish_reason));
    }
    if (d.stop_reason) c->set_stop_reason(*d.stop_reason);
  }
  if (out.prompt_logprobs) fill_prompt_logprobs(*out.prompt_logprobs, prompt_, text_, resp);
  auto* u = resp->mutable_usage();
  u->set_prompt_tokens(out.usage.prompt_tokens);
  u->set_completion_tokens(out.usage.completion_tokens);
  u->set_total_tokens(out.usage.prompt_tokens + out.usage.completion_tokens);
  u->set_cached_prompt_tokens(out.usage.cached_prompt_tokens);
  resp->set_finished(out.finished);
}

void GenerateReactor::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (finish_after_write_) {
      grpc::Status s = *finish_after_write_;
      finish_after_write_.reset();
      finish_locked(s);
      return;
    }
    if (!ok) {
      if (stream_) stream_->cancel();
      finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away; generation stopped"));
      return;
    }
    if (last_written_) {
      finish_locked(grpc::Status::OK);
      return;
    }
  }
  pump();  // the next output may already be queued
}

void GenerateReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream_) stream_->cancel();
  if (std::chrono::system_clock::now() >= deadline_) {
    finish_locked(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded; generation stopped"));
  } else {
    finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client; generation stopped"));
  }
}

void GenerateReactor::finish_locked(const grpc::Status& status) {
  if (finished_) return;
  if (writing_) {
    if (!finish_after_write_) finish_after_write_ = status;
    return;
  }
  finished_ = true;
  if (stream_ && !status.ok()) stream_->cancel();
  Finish(status);
}

void GenerateReactor::OnDone() {
  if (stream_) {
    stream_->set_notifier(nullptr);
    stream_->cancel();  // a no-op for a finished request; frees the KV of one that is not
  }
  if (on_done_) on_done_();
  std::shared_ptr<GenerateReactor> keep;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keep.swap(self_);
  }
  // `keep` goes out of scope here; a pump already posted holds its own reference.
}

}  // namespace tessera::server
