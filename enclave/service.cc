#include "enclave/service.h"

#include <sodium.h>

#include <charconv>

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

}  // namespace

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

Result<formats::frames::Response> ComputationService::PutInput(formats::frames::PutInput request) {
  if (receipt_ || failed_) return Error::PolicyDenied("the computation has already run");
  size_t size = request.ciphertext.size();
  if (options_.max_input_bytes != 0 && input_bytes_ + size > options_.max_input_bytes) {
    return Error::InvalidArgument(
        "input of '" + request.party.substr(0, formats::kMaxIdBytes) + "' (" + std::to_string(size) +
        " bytes) does not fit: this enclave holds at most " +
        std::to_string(options_.max_input_bytes) + " bytes of inputs for a run (" +
        std::to_string(input_bytes_) + " taken; a quarter of its --memory); start the enclave "
        "with more --memory");
  }
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
