#include "attestation/pcr_bank.h"

#include <algorithm>
#include <string>

#include "common/ossl.h"

namespace cloister::attestation {
namespace {

Status CheckIndex(uint32_t index) {
  if (index >= kPcrCount) {
    return Error::InvalidArgument("PCR index " + std::to_string(index) + " out of range (0-" +
                                  std::to_string(kPcrCount - 1) + ")");
  }
  return OkStatus();
}

}  // namespace

Result<PcrBank> PcrBank::AtBoot(const std::map<uint32_t, Bytes>& boot_values) {
  PcrBank bank;
  for (const auto& [index, value] : boot_values) {
    if (index >= kBootLockedPcrs) {
      return Error::InvalidArgument("boot PCR index " + std::to_string(index) +
                                    " is not one the platform sets (0-15)");
    }
    if (value.size() != kPcrLength) {
      return Error::InvalidArgument("boot PCR" + std::to_string(index) + " must be 48 bytes");
    }
    std::copy(value.begin(), value.end(), bank.values_[index].begin());
  }
  CLOISTER_RETURN_IF_ERROR(bank.LockRange(kBootLockedPcrs));
  return bank;
}

Result<Bytes> PcrBank::Extend(uint32_t index, ByteSpan data) {
  CLOISTER_RETURN_IF_ERROR(CheckIndex(index));
  if (locked_.test(index)) {
    return Error::PolicyDenied("PCR" + std::to_string(index) + " is locked");
  }
  if (data.size() > kMaxExtendDataLength) {
    return Error::Malformed("PCR extend data larger than " + std::to_string(kMaxExtendDataLength) +
                            " bytes");
  }
  std::array<uint8_t, kPcrLength> next{};
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned int len = 0;
  if (!ctx || !OsslOk(EVP_DigestInit_ex(ctx.get(), EVP_sha384(), nullptr)) ||
      !OsslOk(EVP_DigestUpdate(ctx.get(), values_[index].data(), kPcrLength)) ||
      !OsslOk(EVP_DigestUpdate(ctx.get(), data.data(), data.size())) ||
      !OsslOk(EVP_DigestFinal_ex(ctx.get(), next.data(), &len)) || len != kPcrLength) {
    return OpensslError("SHA-384");
  }
  values_[index] = next;
  return Bytes(next.begin(), next.end());
}

Result<Bytes> PcrBank::Get(uint32_t index) const {
  CLOISTER_RETURN_IF_ERROR(CheckIndex(index));
  return Bytes(values_[index].begin(), values_[index].end());
}

bool PcrBank::IsLocked(uint32_t index) const { return index < kPcrCount && locked_.test(index); }

Status PcrBank::Lock(uint32_t index) {
  CLOISTER_RETURN_IF_ERROR(CheckIndex(index));
  locked_.set(index);
  return OkStatus();
}

Status PcrBank::LockRange(uint32_t range) {
  if (range > kPcrCount) {
    return Error::InvalidArgument("PCR lock range " + std::to_string(range) + " exceeds " +
                                  std::to_string(kPcrCount));
  }
  for (uint32_t i = 0; i < range; ++i) locked_.set(i);
  return OkStatus();
}

std::map<uint32_t, Bytes> PcrBank::LockedPcrs() const {
  std::map<uint32_t, Bytes> out;
  for (uint32_t i = 0; i < kPcrCount; ++i) {
    if (locked_.test(i)) out.emplace(i, Bytes(values_[i].begin(), values_[i].end()));
  }
  return out;
}

std::map<uint32_t, Bytes> PcrBank::AllPcrs() const {
  std::map<uint32_t, Bytes> out;
  for (uint32_t i = 0; i < kPcrCount; ++i) {
    out.emplace(i, Bytes(values_[i].begin(), values_[i].end()));
  }
  return out;
}

}  // namespace cloister::attestation
