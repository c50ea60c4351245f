#include "common/clock.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

namespace cloister {

UnixMillis SystemClock::NowMillis() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const SystemClock& SystemClock::Get() {
  static const SystemClock clock;
  return clock;
}

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

Result<UnixMillis> ParseRfc3339(std::string_view s) {
  int y, mo, d, h, mi, sec;
  auto bad = [&] {
    return Error::Malformed("not an RFC 3339 UTC time (e.g. 2024-09-07T14:37:40Z): " +
                            std::string(s.substr(0, 64)));
  };
  if (!Digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, mo) ||
      s[7] != '-' || !Digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') ||
      !Digits(s, 11, 2, h) || s[13] != ':' || !Digits(s, 14, 2, mi) || s[16] != ':' ||
      !Digits(s, 17, 2, sec)) {
    return bad();
  }
  size_t pos = 19;
  int64_t ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int ndigits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (ndigits < 3) ms = ms * 10 + (s[pos] - '0');
      ++ndigits;
      ++pos;
    }
    if (ndigits == 0) return bad();
    for (int i = ndigits; i < 3; ++i) ms *= 10;
  }
  std::string_view zone = s.substr(pos);
  if (zone != "Z" && zone != "z" && zone != "+00:00") return bad();
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return bad();
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (tm.tm_mday != d) return bad();  // e.g. February 30th normalised away
  return static_cast<UnixMillis>(t) * 1000 + ms;
}

std::string FormatRfc3339(UnixMillis t) {
  // Civil time from the day count (std::chrono's calendar): no gmtime_r, whose time-zone lock
  // every request thread would otherwise share.
  using namespace std::chrono;
  const sys_time<milliseconds> at{milliseconds{t}};
  const sys_days day = floor<days>(at);
  const year_month_day date{day};
  const hh_mm_ss<milliseconds> time{at - day};
  const int ms = static_cast<int>(time.subseconds().count());
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(date.year()),
                                static_cast<unsigned>(date.month()),
                                static_cast<unsigned>(date.day()), time.hours().count(),
                                time.minutes().count(), time.seconds().count());
  if (ms != 0) out += fmt::format(".{:03}", ms);
  out.push_back('Z');
  return out;
}

}  // namespace cloister
