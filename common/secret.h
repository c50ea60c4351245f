// Secret memory: SecretBytes for long-lived secrets and SecureVector for transient ones.
//
// SecretBytes lives in sodium_malloc memory (guard pages, mlock, wiped on free). It is move-only,
// has no operator== and no formatter, so it cannot be logged or compared by accident; read it
// through the greppable reveal(). SecureVector is a std::vector whose allocator wipes memory
// before freeing it, for plaintexts and derived keys.
//
// Thread safety: a SecretBytes is a value; concurrent reads are safe, writes need external sync.
#ifndef CLOISTER_COMMON_SECRET_H_
#define CLOISTER_COMMON_SECRET_H_

#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace cloister {

// Calls sodium_init() once for the process; aborts if libsodium cannot initialise (no entropy),
// since nothing secure can run then. Safe from any thread.
void EnsureSodiumInitialized();

// Allocator that zeroes memory before returning it to the heap.
template <typename T>
struct ZeroingAllocator {
  using value_type = T;
  ZeroingAllocator() = default;
  template <typename U>
  ZeroingAllocator(const ZeroingAllocator<U>&) {}  // NOLINT
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) {
    sodium_memzero(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const ZeroingAllocator<U>&) const { return true; }
};

using SecureVector = std::vector<uint8_t, ZeroingAllocator<uint8_t>>;

class SecretBytes {
 public:
  SecretBytes() = default;
  // Returns `size` bytes of zeroes in secret memory. kInternal if the allocation fails.
  static Result<SecretBytes> Create(size_t size);
  // Returns a copy of `data` in secret memory.
  static Result<SecretBytes> CopyOf(std::span<const uint8_t> data);
  // Returns `size` random bytes from libsodium's CSPRNG.
  static Result<SecretBytes> Random(size_t size);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Returns the secret bytes. The view lives as long as this object and is not moved from.
  std::span<const uint8_t> reveal() const { return {data_, size_}; }
  std::span<uint8_t> reveal_mutable() { return {data_, size_}; }
  // Returns a deep copy.
  Result<SecretBytes> Clone() const { return CopyOf(reveal()); }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cloister

#endif  // CLOISTER_COMMON_SECRET_H_
