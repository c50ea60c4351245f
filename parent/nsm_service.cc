#include "parent/nsm_service.h"

#include <sodium.h>

#include "common/ossl.h"

namespace cloister::parent {

using formats::nsm::NsmError;
using formats::nsm::Op;
using formats::nsm::Response;

std::map<uint32_t, Bytes> BootPcrs(const EnclaveIdentity& id) {
  std::map<uint32_t, Bytes> pcrs;
  Bytes zero(eif::kPcrSize, 0);
  pcrs[0] = id.debug ? zero : id.measurements.pcr0;
  pcrs[1] = id.debug ? zero : id.measurements.pcr1;
  pcrs[2] = id.debug ? zero : id.measurements.pcr2;
  if (!id.parent_role_arn.empty()) pcrs[3] = eif::ExtendZero(AsBytes(id.parent_role_arn));
  if (!id.parent_instance_id.empty()) pcrs[4] = eif::ExtendZero(AsBytes(id.parent_instance_id));
  if (id.measurements.pcr8) pcrs[8] = *id.measurements.pcr8;
  return pcrs;
}

Result<NsmService> NsmService::Create(const EnclaveIdentity& identity,
                                      attestation::PlatformPki* pki, const Clock* clock,
                                      std::function<void()> on_pki_changed) {
  NsmService s;
  s.module_id_ = identity.module_id;
  CLOISTER_ASSIGN_OR_RETURN(s.bank_, attestation::PcrBank::AtBoot(BootPcrs(identity)));
  s.pki_ = pki;
  s.clock_ = clock;
  s.on_pki_changed_ = std::move(on_pki_changed);
  return s;
}

namespace {
NsmError FromBankError(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
      return NsmError::kInvalidIndex;
    case ErrorCode::kPolicyDenied:
      return NsmError::kReadOnlyIndex;
    case ErrorCode::kMalformed:
      return NsmError::kInputTooLarge;
    default:
      return NsmError::kInternalError;
  }
}
}  // namespace

Response NsmService::Process(const formats::nsm::Request& req) {
  Response r;
  r.op = req.op;
  switch (req.op) {
    case Op::kDescribePcr: {
      auto v = bank_.Get(req.index);
      if (!v) return Response::Failure(FromBankError(v.error()));
      r.lock = bank_.IsLocked(req.index);
      r.data = std::move(*v);
      return r;
    }
    case Op::kExtendPcr: {
      auto v = bank_.Extend(req.index, req.data);
      if (!v) return Response::Failure(FromBankError(v.error()));
      r.data = std::move(*v);
      return r;
    }
    case Op::kLockPcr: {
      auto st = bank_.Lock(req.index);
      if (!st) return Response::Failure(FromBankError(st.error()));
      return r;
    }
    case Op::kLockPcrs: {
      auto st = bank_.LockRange(req.range);
      if (!st) return Response::Failure(FromBankError(st.error()));
      return r;
    }
    case Op::kDescribeNsm: {
      r.module_id = module_id_;
      r.max_pcrs = attestation::kPcrCount;
      for (uint32_t i = 0; i < attestation::kPcrCount; ++i) {
        if (bank_.IsLocked(i)) r.locked_pcrs.insert(static_cast<uint16_t>(i));
      }
      return r;
    }
    case Op::kGetRandom: {
      r.random.resize(kNsmRandomSize);
      randombytes_buf(r.random.data(), r.random.size());
      return r;
    }
    case Op::kAttestation: {
      for (const auto* f : {&req.user_data, &req.nonce, &req.public_key}) {
        if (*f && (*f)->size() > formats::nsm::kMaxAttestationField) {
          return Response::Failure(NsmError::kInputTooLarge);
        }
      }
      attestation::AttestRequest ar;
      ar.module_id = module_id_;
      ar.pcrs = bank_.LockedPcrs();
      ar.public_key = req.public_key;
      ar.user_data = req.user_data;
      ar.nonce = req.nonce;
      uint64_t before = pki_->state_version();
      auto doc = pki_->Attest(ar, clock_->NowMillis());
      if (!doc) {
        return Response::Failure(doc.error().code() == ErrorCode::kInvalidArgument
                                     ? NsmError::kInvalidArgument
                                     : NsmError::kInternalError);
      }
      if (pki_->state_version() != before && on_pki_changed_) on_pki_changed_();
      r.document = std::move(*doc);
      return r;
    }
    case Op::kError:
      break;
  }
  return Response::Failure(NsmError::kInvalidOperation);
}

Bytes NsmService::Handle(ByteSpan request) {
  auto req = formats::nsm::DecodeRequest(request);
  Response resp = req ? Process(*req) : Response::Failure(NsmError::kInvalidArgument);
  auto out = formats::nsm::EncodeResponse(resp);
  if (!out) out = formats::nsm::EncodeResponse(Response::Failure(NsmError::kInternalError));
  return out ? std::move(*out) : Bytes{};
}

}  // namespace cloister::parent
