// KmsClient: a small AWS KMS client (JSON 1.1 over HTTP or HTTPS, SigV4-signed) for the enclave
// and the party CLI. It speaks to cloister-kms or to real AWS KMS alike.
//
// Errors: the service's error name starts the message ("NotFoundException: Key ... does not
// exist"; sigv4::AwsErrorName extracts it) with a matching ErrorCode; transport failures are
// kUnavailable. Plaintexts come back in SecureVector.
//
// Thread safety: a KmsClient is thread-safe (calls are serialised on one keep-alive
// connection); use one client per thread for parallel requests.
#ifndef CLOISTER_KMS_CLIENT_H_
#define CLOISTER_KMS_CLIENT_H_

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/secret.h"
#include "common/sigv4.h"
#include "kms/api_types.h"

namespace httplib {
class Client;
enum class Error;
}

namespace cloister::kms {

struct ClientOptions {
  std::string endpoint;  // "http://127.0.0.1:4000" or "https://kms.us-east-1.amazonaws.com"
  std::string region = "us-east-1";
  sigv4::Credentials credentials;
  // HTTPS: the CA bundle (PEM) the server's certificate must chain to, as AWS tools take it from
  // --ca-bundle / AWS_CA_BUNDLE; empty uses the system store. The certificate must also name the
  // endpoint's host. Unused with http://.
  std::string ca_file;
  // When set, connect to this IP address instead of resolving the endpoint's host (the port,
  // the Host header, TLS SNI and certificate verification still use the endpoint). The enclave
  // uses it to reach KMS through its loopback forwarder (enclave/kms_forwarder.h).
  std::string connect_address;
  int timeout_seconds = 30;
  const Clock* clock = nullptr;  // for signing; SystemClock when null
};

// What Decrypt, GenerateDataKey and GenerateRandom return. With a Recipient, `plaintext` is empty
// and `ciphertext_for_recipient` holds the CMS EnvelopedData.
struct KeyMaterialResult {
  std::string key_id;  // key ARN (empty for GenerateRandom)
  SecureVector plaintext;
  Bytes ciphertext_blob;  // GenerateDataKey
  Bytes ciphertext_for_recipient;
};

// Returns `e`, the error of a KMS call, with `call` ("KMS Decrypt") as context. KMS's client-side
// error names (ValidationException, UnrecognizedClientException, ...) arrive as kInvalidArgument
// and become kMalformed: they are failures of the request, not of the caller's own arguments
// (a CLI exits 1 for them, not 2).
Error KmsCallError(const Error& e, std::string_view call);

class KmsClient {
 public:
  // kInvalidArgument for an endpoint that is not http(s)://host[:port].
  static Result<std::unique_ptr<KmsClient>> Create(ClientOptions options);
  ~KmsClient();

  // Calls `operation` ("Encrypt") with `request` and returns the response object.
  Result<nlohmann::json> Call(std::string_view operation, const nlohmann::json& request);

  // Returns the new key's KeyMetadata. `policy` empty: the default key policy.
  Result<nlohmann::json> CreateKey(std::string_view policy, std::string_view description = "");
  Result<nlohmann::json> DescribeKey(std::string_view key_id);
  Result<std::string> GetKeyPolicy(std::string_view key_id);
  Status PutKeyPolicy(std::string_view key_id, std::string_view policy);
  Status CreateAlias(std::string_view alias_name, std::string_view target_key_id);
  Status EnableKey(std::string_view key_id);
  Status DisableKey(std::string_view key_id);

  // Returns the ciphertext blob.
  Result<Bytes> Encrypt(std::string_view key_id, ByteSpan plaintext,
                        const EncryptionContext& context = {});
  // `key_id` may be empty (the blob names its key). `recipient` adds the Recipient parameter.
  Result<KeyMaterialResult> Decrypt(ByteSpan ciphertext_blob, const EncryptionContext& context = {},
                                    std::string_view key_id = "",
                                    const RecipientParam* recipient = nullptr);
  Result<Bytes> ReEncrypt(ByteSpan ciphertext_blob, std::string_view destination_key_id,
                          const EncryptionContext& source_context = {},
                          const EncryptionContext& destination_context = {});
  Result<KeyMaterialResult> GenerateDataKey(std::string_view key_id, size_t number_of_bytes,
                                            const EncryptionContext& context = {},
                                            const RecipientParam* recipient = nullptr);
  Result<KeyMaterialResult> GenerateRandom(size_t number_of_bytes,
                                           const RecipientParam* recipient = nullptr);

 private:
  KmsClient(ClientOptions options, std::unique_ptr<httplib::Client> http, std::string host);
  // The kUnavailable error for a request that got no answer, with what to do about it (a CA
  // bundle that does not verify the server, a server that does not speak TLS).
  Error TransportError(httplib::Error error) const;

  ClientOptions options_;
  std::unique_ptr<httplib::Client> http_;
  std::string host_;
  std::mutex mu_;
};

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_CLIENT_H_
