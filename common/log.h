// Logging set-up: spdlog's default logger (the only global Tessera has), in text or JSON lines.
// It must never be called from a kernel or a hot per-token path at info level.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace tessera {

enum class LogFormat { kText, kJson };

// Parses "trace|debug|info|warn|error|critical|off"; throws Error(kInvalidArgument) naming the value.
spdlog::level::level_enum parse_log_level(std::string_view name);
// Parses "text|json"; throws Error(kInvalidArgument) naming the value.
LogFormat parse_log_format(std::string_view name);

// Replaces the default logger with one writing to stderr in the given format and level.
void init_logging(spdlog::level::level_enum level, LogFormat format);

}  // namespace tessera
