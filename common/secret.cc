#include "common/secret.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace cloister {

void EnsureSodiumInitialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

Result<SecretBytes> SecretBytes::Create(size_t size) {
  EnsureSodiumInitialized();
  SecretBytes s;
  if (size == 0) return s;
  void* p = sodium_malloc(size);
  if (p == nullptr) return Error::Internal("sodium_malloc failed");
  std::memset(p, 0, size);
  s.data_ = static_cast<uint8_t*>(p);
  s.size_ = size;
  return s;
}

Result<SecretBytes> SecretBytes::CopyOf(std::span<const uint8_t> data) {
  CLOISTER_ASSIGN_OR_RETURN(SecretBytes s, Create(data.size()));
  if (!data.empty()) std::memcpy(s.data_, data.data(), data.size());
  return s;
}

Result<SecretBytes> SecretBytes::Random(size_t size) {
  CLOISTER_ASSIGN_OR_RETURN(SecretBytes s, Create(size));
  if (size != 0) randombytes_buf(s.data_, size);
  return s;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);  // sodium_free wipes before unmapping
}

}  // namespace cloister
