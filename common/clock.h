// Clock: an injectable source of the current time, and RFC 3339 conversion.
//
// Thread safety: SystemClock and FixedClock are safe to share (FixedClock::Set is not).
#ifndef CLOISTER_COMMON_CLOCK_H_
#define CLOISTER_COMMON_CLOCK_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cloister {

// Milliseconds since the Unix epoch, UTC.
using UnixMillis = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixMillis NowMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  UnixMillis NowMillis() const override;
  // Returns a process-wide instance.
  static const SystemClock& Get();
};

class FixedClock final : public Clock {
 public:
  explicit FixedClock(UnixMillis now) : now_(now) {}
  UnixMillis NowMillis() const override { return now_; }
  void Set(UnixMillis now) { now_ = now; }
  void Advance(int64_t ms) { now_ += ms; }

 private:
  UnixMillis now_;
};

// Parses an RFC 3339 UTC timestamp ("2024-09-07T14:37:40Z", fractional seconds allowed, also
// "+00:00"). kMalformed otherwise.
Result<UnixMillis> ParseRfc3339(std::string_view text);
// Formats as "YYYY-MM-DDTHH:MM:SS.mmmZ" (milliseconds omitted when zero).
std::string FormatRfc3339(UnixMillis t);

}  // namespace cloister

#endif  // CLOISTER_COMMON_CLOCK_H_
