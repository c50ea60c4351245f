#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>

#include "common/ossl.h"

namespace cloister {

void InitLogging(std::string_view component) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(std::string(component), sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l " + std::string(component) + " %v",
                      spdlog::pattern_time_type::utc);
  spdlog::level::level_enum level = spdlog::level::info;
  if (const char* env = std::getenv("CLOISTER_LOG_LEVEL")) {
    level = spdlog::level::from_str(env);
  }
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

std::string LogDigest(ByteSpan data) {
  Bytes d = Sha256(data);
  return "len=" + std::to_string(data.size()) + " sha256=" + HexEncode(d).substr(0, 12);
}

}  // namespace cloister
