// Engine: the public facade over EngineImpl (the token-only constructor lives here; the one with a
// tokenizer lives in tokenizer_text_decoder.cpp so that only it links the tokenizer library).
#include "engine/engine.h"

#include "engine/engine_impl.h"

namespace tessera {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kDeadline:
      return "deadline";
    case FinishReason::kAborted:
      return "aborted";
  }
  return "unknown";
}

Engine::Engine(EngineConfig config, std::unique_ptr<StepExecutor> executor, MetricsRegistry& metrics)
    : impl_(std::make_unique<EngineImpl>(std::move(config), std::move(executor), TextDecoderFactory{}, 0, metrics)) {}

Engine::~Engine() = default;

void Engine::start() { impl_->start(); }
std::shared_ptr<RequestStream> Engine::submit(GenerationRequest request) { return impl_->submit(std::move(request)); }
void Engine::begin_drain() { impl_->begin_drain(); }
bool Engine::drained() const { return impl_->drained(); }
EngineHealth Engine::health() const { return impl_->health(); }
const EngineConfig& Engine::config() const { return impl_->config(); }
int64_t Engine::num_unfinished_requests() const { return impl_->num_unfinished_requests(); }

}  // namespace tessera
