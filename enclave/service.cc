#include "enclave/service.h"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <new>
#include <stdexcept>

#include "common/cbor.h"
#include "common/log.h"
#include "enclave/kms_recipient.h"
#include "formats/receipt.h"
#include "kms/client.h"

namespace cloister::enclave {
namespace {

static_assert(kMaxForwardedConnections >= 2 * kDefaultKmsInFlight,
              "the forwarder must relay a connection per KMS request in flight, and spares");

// The TCP port of an http(s)://host[:port] endpoint.
Result<uint16_t> EndpointPort(std::string_view endpoint) {
  bool https = endpoint.starts_with("https://");
  std::string_view rest = endpoint.substr(https ? 8 : 7);
  rest = rest.substr(0, rest.find('/'));
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || rest.find(']', colon) != std::string_view::npos) {
    return static_cast<uint16_t>(https ? 443 : 80);
  }
  std::string_view digits = rest.substr(colon + 1);
  uint16_t port = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || port == 0) {
    return Error::Malformed("KMS endpoint has a bad port");
  }
  return port;
}

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

uint64_t InputLimitForMemory(uint64_t memory_bytes) {
  if (memory_bytes == 0) return 0;
  if (memory_bytes <= kRuntimeReserveBytes) return 1;
  return std::max<uint64_t>((memory_bytes - kRuntimeReserveBytes) / 3, 1);
}

Result<std::unique_ptr<ComputationService>> ComputationService::Create(
    const formats::Manifest& manifest, std::unique_ptr<Computation> computation,
    const EnclaveSession& session, const vsock::Transport& transport, ServiceOptions options,
    const Clock& clock) {
  if (!ConstantTimeEquals(manifest.digest, session.statement().manifest_digest)) {
    return Error::InvalidArgument("the session was started for another manifest");
  }
  if (auto port = EndpointPort(manifest.kms.endpoint); !port) {
    return port.error().WithContext("manifest kms.endpoint");
  }
  CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<ComputationRun> run,
                            ComputationRun::Create(manifest, std::move(computation), session.id_hex(),
                                            clock));
  return std::unique_ptr<ComputationService>(
      new ComputationService(std::move(run), session, transport, std::move(options)));
}

ComputationService::~ComputationService() = default;

Status ComputationService::Register(FrameServer& server) {
  namespace frames = formats::frames;
  CLOISTER_RETURN_IF_ERROR(server.On<frames::SetCredentials>(
      [this](frames::SetCredentials r) -> Result<frames::Response> {
        return Handle(std::move(r));
      }));
  CLOISTER_RETURN_IF_ERROR(server.On<frames::PutInput>(
      [this](frames::PutInput r) -> Result<frames::Response> { return Handle(std::move(r)); }));
  CLOISTER_RETURN_IF_ERROR(server.On<frames::Run>(
      [this](frames::Run r) -> Result<frames::Response> { return Handle(r); }));
  CLOISTER_RETURN_IF_ERROR(server.On<frames::PutInputPart>(
      [this](frames::PutInputPart r) -> Result<frames::Response> { return Handle(std::move(r)); }));
  return OkStatus();
}

formats::frames::Response ComputationService::Handle(formats::frames::Request request) {
  std::lock_guard<std::mutex> lock(mu_);
  Result<formats::frames::Response> reply =
      Error::InvalidArgument("not a request the computation service serves");
  if (auto* m = std::get_if<formats::frames::SetCredentials>(&request)) {
    reply = SetCredentials(std::move(*m));
  } else if (auto* m = std::get_if<formats::frames::PutInput>(&request)) {
    reply = PutInput(std::move(*m));
  } else if (std::holds_alternative<formats::frames::Run>(request)) {
    reply = Run();
  } else if (auto* m = std::get_if<formats::frames::PutInputPart>(&request)) {
    reply = PutInputPart(std::move(*m));
  }
  if (!reply) return formats::frames::ToErrorResponse(reply.error());
  return std::move(*reply);
}

Result<formats::frames::Response> ComputationService::SetCredentials(
    formats::frames::SetCredentials request) {
  if (receipt_ || failed_) return Error::PolicyDenied("the computation has already run");
  sigv4::Credentials c;
  c.access_key_id = std::move(request.access_key_id);
  c.secret_access_key = std::move(request.secret_access_key);
  if (request.session_token) c.session_token = std::move(*request.session_token);
  credentials_.emplace(std::move(c));
  spdlog::info("event=credentials_received access_key_id={}", credentials_->access_key_id);
  return formats::frames::Ok{};
}

Status ComputationService::FitsInMemory(const std::string& party, uint64_t size) const {
  const uint64_t limit = options_.max_input_bytes;
  const uint64_t taken = input_bytes_ + pending_bytes_;
  if (limit == 0 || (size <= limit && taken <= limit - size)) return OkStatus();
  std::string memory = options_.memory_bytes != 0
                           ? "--memory " + Mib(options_.memory_bytes)
                           : std::string("its --memory");
  return Error::InvalidArgument(
      "input of '" + party.substr(0, formats::kMaxIdBytes) + "' (" + std::to_string(size) +
      " bytes) does not fit in this enclave's memory: it holds at most " + std::to_string(limit) +
      " bytes of inputs for a run (" + std::to_string(taken) +
      " taken by other inputs), from " + memory + " ((memory - " + Mib(kRuntimeReserveBytes) +
      " for the runtime) / 3, docs/frames.md); run the enclave with more memory "
      "(cloister run-enclave --memory)");
}

void ComputationService::DropPending(const std::string& party) {
  auto it = pending_.find(party);
  if (it == pending_.end()) return;
  sodium_memzero(it->second.data.data(), it->second.data.size());
  pending_bytes_ -= it->second.size;
  pending_.erase(it);
}

Result<formats::frames::Response> ComputationService::PutInputPart(
    formats::frames::PutInputPart request) {
  if (receipt_ || failed_) return Error::PolicyDenied("the computation has already run");
  const std::string& party = request.party;
  const std::string quoted = "'" + party.substr(0, formats::kMaxIdBytes) + "'";
  auto it = pending_.find(party);
  if (it == pending_.end()) {
    if (request.offset != 0) {
      return Error::InvalidArgument("input part of " + quoted + " at offset " +
                                    std::to_string(request.offset) +
                                    " refused: no input of it is in progress (the first part "
                                    "starts at offset 0)");
    }
    CLOISTER_RETURN_IF_ERROR(run_->CanAccept(party));
    CLOISTER_RETURN_IF_ERROR(FitsInMemory(party, request.size));
    PendingInput pending;
    pending.size = request.size;
    try {
      // The whole input at once: no regrowth, which would hold it twice while it is copied.
      pending.data.reserve(request.size);
    } catch (const std::bad_alloc&) {
      return Error::InvalidArgument("input of " + quoted + " (" + std::to_string(request.size) +
                                    " bytes) does not fit in this enclave's memory now; run "
                                    "the enclave with more memory (cloister run-enclave "
                                    "--memory)");
    } catch (const std::length_error&) {
      return Error::InvalidArgument("input of " + quoted + " is too large");
    }
    it = pending_.emplace(party, std::move(pending)).first;
    pending_bytes_ += request.size;
  } else if (request.offset != it->second.data.size() || request.size != it->second.size) {
    // Out of step (a second input for the party, a part skipped, replayed or resized): what
    // arrived cannot be trusted to be the input the party made.
    std::string what = request.offset == 0
                           ? quoted + " already has an input in progress"
                           : "input part of " + quoted + " at offset " +
                                 std::to_string(request.offset) + " of " +
                                 std::to_string(request.size) + " bytes is out of order";
    Error e = Error::InvalidArgument(
        what + " (expected offset " + std::to_string(it->second.data.size()) + " of " +
        std::to_string(it->second.size) + " bytes); the input in progress is dropped: send it "
        "again from offset 0");
    DropPending(party);
    return e;
  }
  PendingInput& pending = it->second;
  pending.data.insert(pending.data.end(), request.data.begin(), request.data.end());
  if (pending.data.size() < pending.size) return formats::frames::Ok{};

  // Complete: handed over as put_input's whole input, with put_input's checks.
  Bytes whole = std::move(pending.data);
  pending_bytes_ -= pending.size;
  pending_.erase(it);
  return PutInput(formats::frames::PutInput{std::move(request.party), std::move(whole)});
}

Result<formats::frames::Response> ComputationService::PutInput(formats::frames::PutInput request) {
  if (receipt_ || failed_) return Error::PolicyDenied("the computation has already run");
  size_t size = request.ciphertext.size();
  if (pending_.count(request.party) != 0) {
    return Error::PolicyDenied("input for '" + request.party +
                               "' refused: the party already has an input in progress");
  }
  CLOISTER_RETURN_IF_ERROR(FitsInMemory(request.party, size));
  CLOISTER_ASSIGN_OR_RETURN(Bytes digest,
                            run_->PutInput(request.party, std::move(request.ciphertext)));
  input_bytes_ += size;
  spdlog::info("event=input_accepted party={} bytes={} sha384={}", request.party, size,
               HexEncode(digest));
  return formats::frames::InputAccepted{std::move(request.party), std::move(digest)};
}

Result<formats::frames::Response> ComputationService::Run() {
  if (receipt_) return ReceiptReply();
  if (failed_) return failed_->WithContext("the computation failed earlier");
  if (!pending_.empty()) {
    const auto& [party, pending] = *pending_.begin();
    return Error::InvalidArgument("the input of '" + party + "' is incomplete (" +
                                  std::to_string(pending.data.size()) + " of " +
                                  std::to_string(pending.size) +
                                  " bytes received): send its remaining parts before run");
  }
  if (!credentials_) {
    return Error::InvalidArgument("no KMS credentials: send set_credentials before run");
  }
  const formats::Manifest& manifest = run_->manifest();
  std::unique_ptr<LoopbackForwarder> forwarder;
  if (!options_.direct_kms) {
    CLOISTER_ASSIGN_OR_RETURN(uint16_t port, EndpointPort(manifest.kms.endpoint));
    CLOISTER_ASSIGN_OR_RETURN(
        forwarder, LoopbackForwarder::Start(transport_, port,
                                            {vsock::kCidParent, manifest.kms.proxy_port}));
  }
  // One client per request in flight (enclave/computation_run.h kDefaultKmsInFlight), each with its own
  // copy of the credentials and its own keep-alive connection through the forwarder.
  RecipientKmsPool pool(
      [&]() -> Result<std::unique_ptr<kms::KmsClient>> {
        kms::ClientOptions o;
        o.endpoint = manifest.kms.endpoint;
        o.region = manifest.kms.region;
        CLOISTER_ASSIGN_OR_RETURN(o.credentials.secret_access_key,
                                  credentials_->secret_access_key.Clone());
        o.credentials.access_key_id = credentials_->access_key_id;
        CLOISTER_ASSIGN_OR_RETURN(o.credentials.session_token,
                                  credentials_->session_token.Clone());
        o.timeout_seconds = options_.kms_timeout_seconds;
        if (!manifest.kms.ca_bundle.empty()) {
          o.ca_file = options_.app_dir + "/" + manifest.kms.ca_bundle;
        }
        if (forwarder) o.connect_address = "127.0.0.1";
        return kms::KmsClient::Create(std::move(o));
      },
      session_);
  RunStats stats;
  auto body = run_->Run(pool, kDefaultKmsInFlight, &stats);
  auto ms = [](const Elapsed& e) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(e.wall).count();
  };
  spdlog::info(
      "event=run_phases inputs={} kms_calls={} kms_in_flight_max={} items={} kms_ms={} "
      "kms_calls_ms={} decryption_ms={} parsing_ms={} computation_ms={} receipt_ms={} "
      "total_ms={}",
      stats.inputs, stats.kms_calls, stats.kms_max_in_flight, stats.items, ms(stats.kms),
      ms(stats.kms_call_time), ms(stats.decryption), ms(stats.parsing), ms(stats.computation),
      ms(stats.receipt), ms(stats.total));
  // The credentials served their purpose: drop them and every key derived from them. The run's
  // KMS clients (and their copies of the secret) were wiped when Run returned.
  credentials_.reset();
  sigv4::ForgetSigningKeys();
  if (!body) {
    failed_ = body.error();
    spdlog::warn("event=run_failed error={}", body.error().ToString());
    return body.error();
  }
  auto document = session_.AttestReceipt(*body);
  if (!document) return document.error().WithContext("NSM attestation for the receipt");
  CLOISTER_ASSIGN_OR_RETURN(Bytes receipt, formats::EncodeReceipt(*body, *document));
  spdlog::info("event=run_done inputs={} kms_calls={} receipt_bytes={} outputs={} output_bytes={} "
               "outputs_ms={}",
               manifest.parties.size(), stats.kms_calls, receipt.size(), stats.output_count,
               stats.output_ciphertext_bytes, ms(stats.outputs));
  receipt_ = std::move(receipt);
  return ReceiptReply();
}

formats::frames::ReceiptResponse ComputationService::ReceiptReply() const {
  // The outputs go with every copy of the receipt: a parent that lost the first reply gets them
  // again (the run is single-use; an output lost is lost for good).
  formats::frames::ReceiptResponse reply{*receipt_, {}};
  for (const SealedOutput& o : run_->outputs()) {
    reply.outputs.push_back({o.name, o.reader, o.ciphertext});
  }
  return reply;
}

}  // namespace cloister::enclave
