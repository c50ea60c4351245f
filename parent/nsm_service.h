// NsmService: the emulated Nitro Secure Module of one enclave, served by the launcher's monitor
// (docs/nsm.md). It owns the enclave's PCR bank and signs attestation documents with the
// platform PKI, answering the same CBOR requests /dev/nsm does (formats/nsm.h codec).
//
// Boot PCRs (Nitro Enclaves user guide, "Where to get an enclave's measurements"): PCR0-2 from
// the image measurement (all zero in debug mode), PCR3 = SHA384(0^48 || parent role ARN) when a
// role is configured, PCR4 = SHA384(0^48 || parent instance id), PCR8 from the signing
// certificate; 0-15 are locked, 16-31 extendable and lockable by the enclave.
//
// Thread safety: not thread-safe; the monitor serves one request at a time.
#ifndef CLOISTER_PARENT_NSM_SERVICE_H_
#define CLOISTER_PARENT_NSM_SERVICE_H_

#include <functional>
#include <optional>
#include <string>

#include "attestation/eif.h"
#include "attestation/pcr_bank.h"
#include "attestation/platform_pki.h"
#include "common/clock.h"
#include "formats/nsm.h"

namespace cloister::parent {

// GetRandom returns this many bytes (as the Nitro NSM does).
inline constexpr size_t kNsmRandomSize = 256;

struct EnclaveIdentity {
  std::string module_id;  // the EnclaveID, e.g. i-0123456789abcdef0-enc0123456789abcdef
  eif::Measurements measurements;
  bool debug = false;
  std::string parent_instance_id;
  std::string parent_role_arn;  // empty: PCR3 stays zero
};

// Returns the boot PCRs of `identity` (index -> 48 bytes) as described above.
std::map<uint32_t, Bytes> BootPcrs(const EnclaveIdentity& identity);

class NsmService {
 public:
  // `pki` and `clock` must outlive the service. `on_pki_changed` is called after an attestation
  // that renewed a platform certificate (the monitor saves the platform state then).
  static Result<NsmService> Create(const EnclaveIdentity& identity,
                                   attestation::PlatformPki* pki, const Clock* clock,
                                   std::function<void()> on_pki_changed = nullptr);

  // Handles one encoded request and returns the encoded response; malformed requests get
  // {"Error": "InvalidArgument"}. Never fails (encoding errors become InternalError).
  Bytes Handle(ByteSpan request);

  const attestation::PcrBank& bank() const { return bank_; }

 private:
  NsmService() = default;
  formats::nsm::Response Process(const formats::nsm::Request& request);

  std::string module_id_;
  attestation::PcrBank bank_;
  attestation::PlatformPki* pki_ = nullptr;
  const Clock* clock_ = nullptr;
  std::function<void()> on_pki_changed_;
};

}  // namespace cloister::parent

#endif  // CLOISTER_PARENT_NSM_SERVICE_H_
