// PcrBank: the 32 SHA-384 platform configuration registers of an emulated Nitro Secure Module.
//
// Semantics follow the NSM API (aws/aws-nitro-enclaves-nsm-api, src/api/mod.rs, and the
// Nitro Enclaves user guide "Where to get an enclave's measurements"): every register is 48
// bytes, extending computes new = SHA384(old || data), a locked register can no longer be
// extended, and PCRs 0-15 are set by the platform at boot and locked before the enclave runs.
// An attestation document carries every locked register (LockedPcrs()).
//
// Error mapping to the NSM's error names: kInvalidArgument = InvalidIndex (index >= 32),
// kPolicyDenied = ReadOnlyIndex (register locked), kMalformed = InputTooLarge (extend data).
//
// Thread safety: a value type; concurrent const use is safe, mutation needs external locking.
#ifndef CLOISTER_ATTESTATION_PCR_BANK_H_
#define CLOISTER_ATTESTATION_PCR_BANK_H_

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <map>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::attestation {

// Number of registers an NSM exposes (NSM API DescribeNSM: max_pcrs = 32).
inline constexpr uint32_t kPcrCount = 32;
// SHA-384 register width (NSM API: digest "SHA384").
inline constexpr size_t kPcrLength = 48;
// PCRs below this index are written and locked by the platform at boot (0-15; NSM API
// "locked_pcrs" of DescribeNSM).
inline constexpr uint32_t kBootLockedPcrs = 16;
// Largest data an ExtendPCR request may carry: a whole NSM request is at most 0x1000 bytes
// (aws-nitro-enclaves-nsm-api src/driver/mod.rs NSM_REQUEST_MAX_SIZE), so the data is smaller.
inline constexpr size_t kMaxExtendDataLength = 0x1000;

class PcrBank {
 public:
  // Creates a bank with every register zero and none locked.
  PcrBank() = default;

  // Returns the bank of an enclave just booted: PCRs 0..15 hold `boot_values` (absent ones
  // are zero) and are locked; 16..31 are zero and extendable. kInvalidArgument if a key is
  // >= 16 or a value is not 48 bytes.
  static Result<PcrBank> AtBoot(const std::map<uint32_t, Bytes>& boot_values);

  // Extends register `index` with `data` (new = SHA384(old || data)) and returns the new value.
  // kInvalidArgument: index >= 32; kPolicyDenied: locked; kMalformed: data too large.
  // On failure the bank is unchanged.
  Result<Bytes> Extend(uint32_t index, ByteSpan data);

  // Returns the value of register `index`. kInvalidArgument if index >= 32.
  Result<Bytes> Get(uint32_t index) const;

  // Returns whether register `index` is locked (false for out-of-range indexes).
  bool IsLocked(uint32_t index) const;

  // Locks register `index` (locking a locked register succeeds, as the NSM does).
  // kInvalidArgument if index >= 32.
  Status Lock(uint32_t index);

  // Locks registers [0, range) (NSM LockPCRs). kInvalidArgument if range > 32.
  Status LockRange(uint32_t range);

  // Returns every locked register by index: what an attestation document carries.
  std::map<uint32_t, Bytes> LockedPcrs() const;

  // Returns all 32 registers by index.
  std::map<uint32_t, Bytes> AllPcrs() const;

 private:
  std::array<std::array<uint8_t, kPcrLength>, kPcrCount> values_{};
  std::bitset<kPcrCount> locked_;
};

}  // namespace cloister::attestation

#endif  // CLOISTER_ATTESTATION_PCR_BANK_H_
