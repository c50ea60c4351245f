// Stopwatch: elapsed time on two clocks at once, for phase timings (enclave/computation_run.h RunStats):
// wall time (std::chrono::steady_clock) and the calling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID). On a busy machine the wall time of a phase includes the time other
// processes ran; its CPU time does not, so the two together tell a slow phase from a busy host.
//
// Thread safety: a Stopwatch belongs to the thread that started it (CPU time is per thread);
// Elapsed is a plain value.
#ifndef CLOISTER_COMMON_STOPWATCH_H_
#define CLOISTER_COMMON_STOPWATCH_H_

#include <time.h>

#include <chrono>

namespace cloister {

struct Elapsed {
  std::chrono::nanoseconds wall{0};
  std::chrono::nanoseconds cpu{0};  // of the thread that measured it

  Elapsed& operator+=(const Elapsed& o) {
    wall += o.wall;
    cpu += o.cpu;
    return *this;
  }
  Elapsed& operator-=(const Elapsed& o) {
    wall -= o.wall;
    cpu -= o.cpu;
    return *this;
  }
  friend Elapsed operator+(Elapsed a, const Elapsed& b) { return a += b; }
  friend Elapsed operator-(Elapsed a, const Elapsed& b) { return a -= b; }
};

class Stopwatch {
 public:
  // Starts now.
  Stopwatch() : wall_(std::chrono::steady_clock::now()), cpu_(ThreadCpu()) {}
  // Returns the time since construction.
  Elapsed Read() const { return {std::chrono::steady_clock::now() - wall_, ThreadCpu() - cpu_}; }

  // Returns the calling thread's CPU time (0 if the clock is unavailable).
  static std::chrono::nanoseconds ThreadCpu() {
    timespec ts{};
    if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return std::chrono::nanoseconds(0);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  }

 private:
  std::chrono::steady_clock::time_point wall_;
  std::chrono::nanoseconds cpu_;
};

}  // namespace cloister

#endif  // CLOISTER_COMMON_STOPWATCH_H_
