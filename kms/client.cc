#include "kms/client.h"

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cloister::kms {
namespace {

using nlohmann::json;

json ContextJson(const EncryptionContext& c) {
  json j = json::object();
  for (const auto& [k, v] : c) j[k] = v;
  return j;
}

void AddRecipient(json& j, const RecipientParam* r) {
  if (r == nullptr) return;
  j["Recipient"] = {{"KeyEncryptionAlgorithm", r->key_encryption_algorithm.empty()
                                                    ? "RSAES_OAEP_SHA_256"
                                                    : r->key_encryption_algorithm},
                    {"AttestationDocument", Base64EncodePublic(r->attestation_document)}};
}

Result<Bytes> BlobField(const json& j, std::string_view name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) {
    return Error::Malformed("KMS response lacks " + std::string(name));
  }
  return Base64Decode(it->get_ref<const std::string&>());
}

std::string StringField(const json& j, std::string_view name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<KeyMaterialResult> MaterialFrom(const json& r) {
  KeyMaterialResult out;
  out.key_id = StringField(r, "KeyId");
  if (r.contains("CiphertextForRecipient")) {
    CLOISTER_ASSIGN_OR_RETURN(out.ciphertext_for_recipient,
                              BlobField(r, "CiphertextForRecipient"));
  } else if (r.contains("Plaintext")) {
    CLOISTER_ASSIGN_OR_RETURN(Bytes pt, BlobField(r, "Plaintext"));
    out.plaintext.assign(pt.begin(), pt.end());
    sodium_memzero(pt.data(), pt.size());
  } else {
    return Error::Malformed("KMS response has neither Plaintext nor CiphertextForRecipient");
  }
  if (r.contains("CiphertextBlob")) {
    CLOISTER_ASSIGN_OR_RETURN(out.ciphertext_blob, BlobField(r, "CiphertextBlob"));
  }
  return out;
}

// Blocks SIGPIPE on this thread while it lives: OpenSSL writes to the socket with write(2), and
// a server that has closed the connection would otherwise end the whole process (the CLI, the
// enclave) instead of failing one request. A SIGPIPE raised meanwhile is discarded.
class ScopedSigpipeBlock {
 public:
  explicit ScopedSigpipeBlock(bool active) : active_(active) {
    if (!active_) return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~ScopedSigpipeBlock() {
    if (!active_) return;
    sigset_t pending;
    sigemptyset(&pending);
    if (!sigismember(&old_, SIGPIPE) && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE)) {
      const timespec zero{0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  bool active_;
  sigset_t pipe_{};
  sigset_t old_{};
};

}  // namespace

KmsClient::KmsClient(ClientOptions options, std::unique_ptr<httplib::Client> http,
                     std::string host)
    : options_(std::move(options)), http_(std::move(http)), host_(std::move(host)) {}

KmsClient::~KmsClient() = default;

Error KmsCallError(const Error& e, std::string_view call) {
  Error out = e.WithContext(call);
  if (out.code() == ErrorCode::kInvalidArgument) return Error::Malformed(out.message());
  return out;
}

Result<std::unique_ptr<KmsClient>> KmsClient::Create(ClientOptions options) {
  std::string_view ep = options.endpoint;
  bool https = ep.starts_with("https://");
  if (!https && !ep.starts_with("http://")) {
    return Error::InvalidArgument("KMS endpoint must start with http:// or https://");
  }
  std::string_view rest = ep.substr(https ? 8 : 7);
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return Error::InvalidArgument("KMS endpoint must not have a path");
    }
    rest = rest.substr(0, slash);
  }
  if (rest.empty()) return Error::InvalidArgument("KMS endpoint has no host");
  std::string host(rest);
  // Drop a default port from the Host header, as HTTP clients do.
  if ((https && host.ends_with(":443")) || (!https && host.ends_with(":80"))) {
    host = host.substr(0, host.rfind(':'));
  }
  auto http = std::make_unique<httplib::Client>(std::string(https ? "https://" : "http://") +
                                                std::string(rest));
  if (!http->is_valid()) return Error::InvalidArgument("KMS endpoint is not usable");
  http->set_keep_alive(true);
  http->set_tcp_nodelay(true);  // see kms/http_handler.cc
  http->set_connection_timeout(options.timeout_seconds, 0);
  http->set_read_timeout(options.timeout_seconds, 0);
  http->set_write_timeout(options.timeout_seconds, 0);
  if (!options.connect_address.empty()) {
    std::string_view name = rest;  // host[:port]
    if (size_t colon = name.rfind(':');
        colon != std::string_view::npos && name.find(']', colon) == std::string_view::npos) {
      name = name.substr(0, colon);
    }
    http->set_hostname_addr_map({{std::string(name), options.connect_address}});
  }
  if (https) {
    if (!options.ca_file.empty()) http->set_ca_cert_path(options.ca_file.c_str());
    http->enable_server_certificate_verification(true);
  }
  return std::unique_ptr<KmsClient>(new KmsClient(std::move(options), std::move(http), host));
}

namespace {

// Connects once to `hostport` ("host[:port]", default port `default_port`) to learn why the
// HTTP client could not: cpp-httplib reports only "Connection". Returns "" when it connects
// now, else the resolver's or connect(2)'s error text ("Connection refused"...).
std::string ConnectProbe(std::string_view hostport, const char* default_port) {
  std::string host(hostport);
  std::string port = default_port;
  if (size_t colon = host.rfind(':');
      colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return std::string("cannot resolve ") + host + ": " + ::gai_strerror(rc);
  }
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        err = ::poll(&p, 1, 2000) == 1 ? 0 : ETIMEDOUT;
        socklen_t len = sizeof err;
        if (err == 0) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    ::close(fd);
    if (err == 0) {
      why.clear();
      break;
    }
    why = std::strerror(err);
  }
  ::freeaddrinfo(found);
  return why;
}

}  // namespace

Error KmsClient::TransportError(httplib::Error error) const {
  std::string message =
      "KMS request to " + options_.endpoint + " failed: " + httplib::to_string(error);
  const std::string_view rest =
      std::string_view(options_.endpoint)
          .substr(options_.endpoint.starts_with("https://") ? 8 : 7);
  const std::string hostport(rest.substr(0, rest.find('/')));
  const bool https = options_.endpoint.starts_with("https://");
  const std::string trust = options_.ca_file.empty() ? "the system's CA certificates"
                                                     : "the CA bundle " + options_.ca_file;
  const long verify = https ? http_->get_openssl_verify_result() : X509_V_OK;
  if (verify != X509_V_OK) {
    message += " (TLS: the server's certificate does not verify against " + trust + ": " +
               X509_verify_cert_error_string(verify) +
               "; give the KMS server's CA with --ca-bundle FILE or AWS_CA_BUNDLE)";
  } else if (error == httplib::Error::SSLServerVerification) {
    message += " (TLS: the server's certificate does not verify against " + trust +
               " or does not name " + host_ +
               "; give the KMS server's CA with --ca-bundle FILE or AWS_CA_BUNDLE)";
  } else if (error == httplib::Error::SSLConnection) {
    message += " (TLS handshake failed: the certificate did not verify against " + trust +
               " for " + host_ + ", or the server does not speak HTTPS - use http:// for a KMS "
               "started with --insecure-http - or a proxy there accepted the connection but "
               "could not reach KMS behind it)";
  } else if (error == httplib::Error::Connection) {
    std::string why = ConnectProbe(hostport, https ? "443" : "80");
    message += " (cannot connect to " + hostport + ": " +
               (why.empty() ? std::string("it failed then, and connects now") : why) +
               "; is the KMS, or the proxy in front of it, running and listening there? "
               "cloister-kms prints its endpoint when it starts)";
  } else if (error == httplib::Error::Read || error == httplib::Error::Write) {
    message += std::string(" (connected to ") + hostport + ", but the connection " +
               (error == httplib::Error::Read ? "closed or timed out before an answer"
                                              : "closed while the request was sent") +
               ": " +
               (https ? "a proxy there may have no KMS reachable behind it"
                      : "is the server HTTPS (then use https://), or a proxy there with no KMS "
                        "reachable behind it?") +
               ")";
  } else if (error == httplib::Error::SSLLoadingCerts) {
    message += " (cannot load the CA bundle " + options_.ca_file + ")";
  }
  return Error::Unavailable(message);
}

Result<json> KmsClient::Call(std::string_view operation, const json& request) {
  std::string body = request.dump();
  sigv4::Request r;
  r.method = "POST";
  r.target = "/";
  r.headers = {{"Host", host_},
               {"Content-Type", "application/x-amz-json-1.1"},
               {"X-Amz-Target", "TrentService." + std::string(operation)}};
  r.body = AsBytes(body);
  const Clock& clock = options_.clock ? *options_.clock : SystemClock::Get();
  CLOISTER_RETURN_IF_ERROR(
      sigv4::Sign(r, options_.credentials, options_.region, "kms", clock.NowMillis()));
  httplib::Headers headers;
  for (const auto& [k, v] : r.headers) {
    if (k != "Content-Type") headers.emplace(k, v);
  }
  std::lock_guard<std::mutex> lock(mu_);
  ScopedSigpipeBlock no_sigpipe(options_.endpoint.starts_with("https://"));
  auto res = http_->Post("/", headers, body, "application/x-amz-json-1.1");
  sodium_memzero(body.data(), body.size());
  if (!res) return TransportError(res.error());
  json j = json::parse(res->body, nullptr, false);
  if (res->status != 200) {
    std::string type;
    std::string message;
    if (j.is_object()) {
      type = StringField(j, "__type");
      message = StringField(j, "message");
      if (message.empty()) message = StringField(j, "Message");
    }
    if (size_t hash = type.rfind('#'); hash != std::string::npos) type = type.substr(hash + 1);
    if (type.empty()) {
      const std::string& h = res->get_header_value("x-amzn-ErrorType");
      type = h.substr(0, h.find(':'));
    }
    if (type.empty()) type = "KMSInternalException";
    return KmsError(type, message.empty() ? "HTTP " + std::to_string(res->status) : message);
  }
  if (!j.is_object()) return Error::Malformed("KMS response is not a JSON object");
  return j;
}

Result<json> KmsClient::CreateKey(std::string_view policy, std::string_view description) {
  json req = json::object();
  if (!policy.empty()) req["Policy"] = policy;
  if (!description.empty()) req["Description"] = description;
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("CreateKey", req));
  if (!r.contains("KeyMetadata")) return Error::Malformed("CreateKey response lacks KeyMetadata");
  return r["KeyMetadata"];
}

Result<json> KmsClient::DescribeKey(std::string_view key_id) {
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("DescribeKey", {{"KeyId", key_id}}));
  if (!r.contains("KeyMetadata")) return Error::Malformed("DescribeKey response lacks KeyMetadata");
  return r["KeyMetadata"];
}

Result<std::string> KmsClient::GetKeyPolicy(std::string_view key_id) {
  CLOISTER_ASSIGN_OR_RETURN(json r,
                            Call("GetKeyPolicy", {{"KeyId", key_id}, {"PolicyName", "default"}}));
  return StringField(r, "Policy");
}

Status KmsClient::PutKeyPolicy(std::string_view key_id, std::string_view policy) {
  CLOISTER_ASSIGN_OR_RETURN(
      json r,
      Call("PutKeyPolicy", {{"KeyId", key_id}, {"PolicyName", "default"}, {"Policy", policy}}));
  (void)r;
  return OkStatus();
}

Status KmsClient::CreateAlias(std::string_view alias_name, std::string_view target_key_id) {
  CLOISTER_ASSIGN_OR_RETURN(
      json r, Call("CreateAlias", {{"AliasName", alias_name}, {"TargetKeyId", target_key_id}}));
  (void)r;
  return OkStatus();
}

Status KmsClient::EnableKey(std::string_view key_id) {
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("EnableKey", {{"KeyId", key_id}}));
  (void)r;
  return OkStatus();
}

Status KmsClient::DisableKey(std::string_view key_id) {
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("DisableKey", {{"KeyId", key_id}}));
  (void)r;
  return OkStatus();
}

Result<Bytes> KmsClient::Encrypt(std::string_view key_id, ByteSpan plaintext,
                                 const EncryptionContext& context) {
  json req = {{"KeyId", key_id}, {"Plaintext", Base64Encode(plaintext)}};
  if (!context.empty()) req["EncryptionContext"] = ContextJson(context);
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("Encrypt", req));
  return BlobField(r, "CiphertextBlob");
}

Result<KeyMaterialResult> KmsClient::Decrypt(ByteSpan ciphertext_blob,
                                             const EncryptionContext& context,
                                             std::string_view key_id,
                                             const RecipientParam* recipient) {
  json req = {{"CiphertextBlob", Base64EncodePublic(ciphertext_blob)}};
  if (!context.empty()) req["EncryptionContext"] = ContextJson(context);
  if (!key_id.empty()) req["KeyId"] = key_id;
  AddRecipient(req, recipient);
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("Decrypt", req));
  return MaterialFrom(r);
}

Result<Bytes> KmsClient::ReEncrypt(ByteSpan ciphertext_blob, std::string_view destination_key_id,
                                   const EncryptionContext& source_context,
                                   const EncryptionContext& destination_context) {
  json req = {{"CiphertextBlob", Base64EncodePublic(ciphertext_blob)},
              {"DestinationKeyId", destination_key_id}};
  if (!source_context.empty()) req["SourceEncryptionContext"] = ContextJson(source_context);
  if (!destination_context.empty()) {
    req["DestinationEncryptionContext"] = ContextJson(destination_context);
  }
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("ReEncrypt", req));
  return BlobField(r, "CiphertextBlob");
}

Result<KeyMaterialResult> KmsClient::GenerateDataKey(std::string_view key_id,
                                                     size_t number_of_bytes,
                                                     const EncryptionContext& context,
                                                     const RecipientParam* recipient) {
  json req = {{"KeyId", key_id}, {"NumberOfBytes", number_of_bytes}};
  if (!context.empty()) req["EncryptionContext"] = ContextJson(context);
  AddRecipient(req, recipient);
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("GenerateDataKey", req));
  return MaterialFrom(r);
}

Result<KeyMaterialResult> KmsClient::GenerateRandom(size_t number_of_bytes,
                                                    const RecipientParam* recipient) {
  json req = {{"NumberOfBytes", number_of_bytes}};
  AddRecipient(req, recipient);
  CLOISTER_ASSIGN_OR_RETURN(json r, Call("GenerateRandom", req));
  return MaterialFrom(r);
}

}  // namespace cloister::kms
