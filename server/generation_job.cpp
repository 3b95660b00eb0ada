// GenerationJob: engine outputs to HTTP bytes; see generation_job.h.
#include "server/generation_job.h"

#include "server/error_mapping.h"
#include "server/sse.h"

namespace tessera::server {

GenerationJob::GenerationJob(PreparedGeneration prepared, std::vector<std::shared_ptr<RequestStream>> streams,
                             TokenText token_text, bool streaming)
    : streams_(std::move(streams)),
      stream_done_(streams_.size(), false),
      builder_(prepared.shape, std::move(prepared.prompts), std::move(token_text)),
      streaming_(streaming) {}

GenerationJob::~GenerationJob() {
  // A job dropped before its end (connection lost, server stopping) must not leave work running.
  if (!done_) cancel();
  for (auto& s : streams_) s->set_notifier(nullptr);
}

void GenerationJob::set_notifier(const std::function<void()>& notify) {
  for (auto& s : streams_) s->set_notifier(notify);
}

std::string GenerationJob::start_bytes() {
  std::string out;
  for (const auto& e : builder_.start_events()) append_sse_event(out, e);
  return out;
}

void GenerationJob::cancel() {
  for (auto& s : streams_) s->cancel();
}

void GenerationJob::on_error(const Error& e) {
  if (!error_) error_ = e;
  cancel();  // the other prompts' streams are of no use now
}

GenerationJob::Poll GenerationJob::poll() {
  Poll p;
  if (done_) {
    p.done = true;
    return p;
  }
  bool all_done = true;
  for (size_t i = 0; i < streams_.size(); ++i) {
    while (!stream_done_[i]) {
      auto out = streams_[i]->try_pop();
      if (!out) break;
      if (out->error) on_error(*out->error);
      try {  // an output the builder cannot render ends this request with an error, never the server
        if (streaming_) {
          if (!error_) {
            for (const auto& e : builder_.stream_events(static_cast<int32_t>(i), *out)) append_sse_event(p.bytes, e);
          }
        } else {
          builder_.accumulate(static_cast<int32_t>(i), *out);
        }
      } catch (const Error& e) {
        on_error(e);
      } catch (const std::exception& e) {
        on_error(Error(ErrorCode::kInternal, fmt::format("rendering output of prompt {}: {}", i, e.what())));
      }
      if (out->finished) stream_done_[i] = true;
    }
    all_done = all_done && stream_done_[i];
  }
  if (!all_done) return p;
  done_ = true;
  p.done = true;
  if (streaming_) {
    if (error_) {
      append_sse_event(p.bytes, error_body(*error_));
    } else if (auto usage = builder_.usage_event()) {
      append_sse_event(p.bytes, *usage);
    }
    p.bytes += kSseDone;
  } else if (error_) {
    p.status = http_status(error_->code());
    p.bytes = error_body(*error_).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    p.bytes = builder_.final_response().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return p;
}

}  // namespace tessera::server
