#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cctype>
#include <cstdlib>
#include <memory>

#include "common/ossl.h"

namespace cloister {
namespace {

// Appends `c` to `out`, escaped when it would break the line (or, with `quotes`, the value).
void AppendEscaped(std::string& out, char c, bool quotes) {
  static const char kHex[] = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(c);
  switch (c) {
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    default: break;
  }
  if (quotes && (c == '"' || c == '\\')) {
    out += '\\';
    out += c;
  } else if (u < 0x20 || u == 0x7f) {
    out += "\\x";
    out += kHex[u >> 4];
    out += kHex[u & 15];
  } else {
    out += c;
  }
}

// %* in the pattern: the message with control characters escaped, so one event is one line.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string out;
    out.reserve(msg.payload.size());
    for (char c : msg.payload) AppendEscaped(out, c, /*quotes=*/false);
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

void SetUpLogger(std::string_view component, spdlog::level::level_enum level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(std::string(component), sink);
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<EscapedMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l " +
                                                        std::string(component) + " %*");
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace

Result<spdlog::level::level_enum> ParseLogLevel(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "trace") return spdlog::level::trace;
  if (lower == "debug") return spdlog::level::debug;
  if (lower == "info") return spdlog::level::info;
  if (lower == "warn" || lower == "warning") return spdlog::level::warn;
  if (lower == "error") return spdlog::level::err;
  if (lower == "off") return spdlog::level::off;
  std::string shown;
  for (char c : name.substr(0, 32)) AppendEscaped(shown, c, /*quotes=*/true);
  return Error::InvalidArgument(std::string(kLogLevelEnv) + "=" + shown +
                                " is not a log level: use trace, debug, info, warn, error or off "
                                "(any case)");
}

Status InitLoggingFromEnvironment(std::string_view component) {
  const char* env = std::getenv(kLogLevelEnv);
  if (env == nullptr || *env == '\0') {
    SetUpLogger(component, spdlog::level::info);
    return OkStatus();
  }
  auto level = ParseLogLevel(env);
  SetUpLogger(component, level ? *level : spdlog::level::info);
  if (!level) return level.error();
  return OkStatus();
}

void InitLogging(std::string_view component) {
  if (Status s = InitLoggingFromEnvironment(component); !s) {
    spdlog::warn("event=bad_log_level message={} level=info", LogQuote(s.error().message()));
  }
}

void SetLogLevel(spdlog::level::level_enum level) { spdlog::default_logger()->set_level(level); }

std::string LogQuote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) AppendEscaped(out, c, /*quotes=*/true);
  out += '"';
  return out;
}

std::string LogDigest(ByteSpan data) {
  Bytes d = Sha256(data);
  return "len=" + std::to_string(data.size()) + " sha256=" + HexEncode(d).substr(0, 12);
}

}  // namespace cloister
