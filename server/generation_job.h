// GenerationJob: one HTTP generation request in flight: its RequestStreams (one per prompt) and the
// OpenAI formatting. The session polls it whenever the engine signals output; it returns the bytes
// to send (SSE events when streaming; the whole JSON body once finished otherwise).
// Not thread-safe: one session strand owns it. It must never block: it only try_pop()s.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "server/openai_response_builder.h"
#include "server/serving_core.h"

namespace tessera::server {

class GenerationJob {
 public:
  GenerationJob(PreparedGeneration prepared, std::vector<std::shared_ptr<RequestStream>> streams, TokenText token_text,
                bool streaming);
  ~GenerationJob();

  bool streaming() const { return streaming_; }
  // Installs `notify` on every stream (called from the engine thread; must be cheap).
  void set_notifier(const std::function<void()>& notify);

  struct Poll {
    std::string bytes;   // streaming: SSE events; otherwise the JSON body, once done
    bool done = false;
    int status = 200;    // non-streaming only: the HTTP status of the body
  };
  // Streaming: the events to send before any output (chat role deltas).
  std::string start_bytes();
  Poll poll();
  // The client went away: every stream is cancelled (the engine frees KV at its next step).
  void cancel();
  bool finished() const { return done_; }

 private:
  void on_error(const Error& e);

  std::vector<std::shared_ptr<RequestStream>> streams_;
  std::vector<bool> stream_done_;
  OpenAiResponseBuilder builder_;
  bool streaming_;
  bool done_ = false;
  std::optional<Error> error_;
};

}  // namespace tessera::server
