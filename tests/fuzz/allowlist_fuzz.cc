// Fuzz target: the cloister-proxy allowlist parser (proxy/allowlist.h). Any input must give a
// parsed allowlist obeying the documented limits, or a kMalformed error; never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/allowlist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = cloister::proxy::ParseAllowlist(text);
  if (parsed) {
    if (parsed->entries.size() > cloister::proxy::kMaxAllowlistEntries) std::abort();
    for (const auto& e : parsed->entries) {
      if (e.port == 0 || e.address.empty() ||
          e.address.size() > cloister::proxy::kMaxHostNameLength) {
        std::abort();
      }
    }
  } else if (parsed.error().code() != cloister::ErrorCode::kMalformed) {
    std::abort();
  }
  return 0;
}
