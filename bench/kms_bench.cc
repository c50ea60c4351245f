// cloister-kms throughput. An in-process cloister-kms (KmsService behind its HTTP server on
// 127.0.0.1:0, the same handler the binary installs) serves kThreads client threads, each with
// its own keep-alive KmsClient. For every HTTP figure, the crypto-only cost of the same work
// (no HTTP, no JSON, no SigV4, no audit log) runs in the same process at the same thread count:
//   Encrypt            vs  SealBlob
//   Decrypt            vs  OpenBlob
//   Decrypt+Recipient  vs  RecipientVerifier::Verify (cache off for "fresh") + OpenBlob +
//                          EnvelopeForRecipient
// "fresh" uses a new attestation document for every request (made before timing starts);
// "reused" sends one document every time, so the verifier answers from its cache.
// Two kinds of client, each thread with its own keep-alive connection:
//   BM_Http_*    KmsClient, the library the enclave and the CLI use: every request is built,
//                JSON-encoded, SigV4-signed and its answer parsed inside the timed loop;
//   BM_Replay_*  a load generator in the manner of wrk: the same signed requests, built and
//                signed before timing starts, sent with Boost.Beast; only the status and the
//                presence of the answer's field are checked. This is the server's throughput
//                with as little client work as possible on the shared cores (the server still
//                checks every signature, inside the 5-minute clock-skew window).
// Floors, in the same run: Replay_HttpFloor (the same signed request to the same HTTP server with
// a handler that only answers), Tcp_LoopbackFloor (the same sizes over plain loopback TCP) and
// Floor_* (what the libraries alone cost for the work every Recipient request must do:
// nlohmann-json lexing the body, OpenSSL's RSA-OAEP encryption, the two SHA-256 digests) and
// Stage_* (what the server's own stages cost alone: decoding that body, one audit line, and the
// whole handler for one reused-document request on one thread, without HTTP).
//
// Targets (issue 4): fresh HTTP >= 0.7x fresh crypto-only; reused >= 10x fresh.
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rsa.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <thread>
#include <utility>

#include "attestation/platform_pki.h"
#include "common/log.h"
#include "common/sigv4.h"
#include "kms/ciphertext.h"
#include "kms/audit_log.h"
#include "kms/client.h"
#include "kms/http_handler.h"
#include "kms/recipient.h"
#include "kms/request.h"

namespace cloister::kms {
namespace {

constexpr int kThreads = 4;
constexpr int kFreshPerThread = 150;
constexpr char kArn[] = "arn:aws:iam::111122223333:user/bench";
constexpr char kAkid[] = "AKIABENCH";
constexpr char kSecret[] = "bench-secret";

struct World {
  std::filesystem::path dir;
  std::unique_ptr<attestation::PlatformPki> pki;
  EvpPkeyPtr rsa;
  std::unique_ptr<KmsService> service;
  std::unique_ptr<HttpServer> server;
  std::thread server_thread;
  // The HTTP floor: the same HTTP server with a handler that only answers.
  std::unique_ptr<HttpServer> echo;
  std::thread echo_thread;
  int echo_port = 0;
  std::string endpoint;
  std::string key_arn;
  Bytes blob;                       // Encrypt of kPlaintext under key_arn
  Bytes material;                   // the key's material, for the crypto-only baselines
  std::vector<Bytes> fresh_http;    // never sent before
  std::vector<Bytes> fresh_replay;  // never sent before (replay client)
  std::vector<Bytes> fresh_crypto;  // for the crypto-only fresh baseline
  Bytes reused;
  std::atomic<size_t> next_http{0};
  std::atomic<size_t> next_crypto{0};
  std::atomic<size_t> next_replay{0};
  int port = 0;
  std::unique_ptr<RecipientVerifier> cold;  // cache disabled
  std::unique_ptr<RecipientVerifier> warm;
};

const Bytes kPlaintext(32, 0x5a);

World& W() {
  static World* w = [] {
    auto* w = new World;
    spdlog::set_level(spdlog::level::warn);
    w->dir = std::filesystem::temp_directory_path() / ("kms-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(w->dir);
    UnixMillis now = SystemClock::Get().NowMillis();
    w->pki = std::make_unique<attestation::PlatformPki>(
        std::move(*attestation::PlatformPki::Create(now - 60'000)));
    w->rsa.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(w->rsa.get(), &der);
    Bytes spki(der, der + len);
    OPENSSL_free(der);
    auto attest = [&](int i) {
      attestation::AttestRequest req;
      req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
      for (uint32_t p = 0; p < 16; ++p) req.pcrs[p] = Bytes(48, static_cast<uint8_t>(p + 1));
      req.public_key = spki;
      req.nonce = ToBytes("nonce-" + std::to_string(i));
      return *w->pki->Attest(req, SystemClock::Get().NowMillis());
    };
    int n = kThreads * kFreshPerThread;  // Iterations() below runs each thread exactly this often
    for (int i = 0; i < n; ++i) w->fresh_http.push_back(attest(i));
    for (int i = 0; i < n; ++i) w->fresh_crypto.push_back(attest(n + i));
    for (int i = 0; i < n; ++i) w->fresh_replay.push_back(attest(2 * n + i));
    w->reused = attest(-1);

    KmsConfig config;
    Principal p;
    p.arn = kArn;
    p.account = "111122223333";
    p.credentials.access_key_id = kAkid;
    p.credentials.secret_access_key = *SecretBytes::CopyOf(AsBytes(kSecret));
    config.principals.push_back(std::move(p));
    config.trusted_roots_pem = w->pki->RootCertificatePem();
    auto store = KeyStore::Open(w->dir.string(), *SecretBytes::Random(32));
    auto audit = AuditLog::Open((w->dir / "audit.log").string());
    w->service = std::move(*KmsService::Create(std::move(config), std::move(*store),
                                               std::move(*audit), SystemClock::Get()));
    w->server = std::move(
        *HttpServer::Listen("127.0.0.1", 0, KmsHttpHandler(*w->service), KmsHttpServerOptions()));
    w->port = w->server->port();
    w->endpoint = "http://127.0.0.1:" + std::to_string(w->port);
    w->server_thread = std::thread([w] { w->server->Run(); });
    w->echo = std::move(*HttpServer::Listen(
        "127.0.0.1", 0,
        [](HttpRequest) {
          // About the size of a CiphertextForRecipient answer.
          static const std::string body =
              "{\"CiphertextForRecipient\":\"" + std::string(680, 'A') + "\"}";
          return HttpAnswer{200,
                            {{"Content-Type", "application/x-amz-json-1.1"},
                             {"x-amzn-RequestId", "00000000-0000-4000-8000-000000000000"}},
                            body};
        },
        KmsHttpServerOptions()));
    w->echo_port = w->echo->port();
    w->echo_thread = std::thread([w] { w->echo->Run(); });

    RecipientVerifierOptions cold;
    cold.trust_roots_pem = w->pki->RootCertificatePem();
    cold.cache_entries = 0;
    w->cold = std::move(*RecipientVerifier::Create(cold, SystemClock::Get()));
    RecipientVerifierOptions warm = cold;
    warm.cache_entries = kDefaultRecipientCacheEntries;
    w->warm = std::move(*RecipientVerifier::Create(warm, SystemClock::Get()));
    w->material = Bytes(32, 0x11);
    return w;
  }();
  return *w;
}

std::unique_ptr<KmsClient> NewClient() {
  ClientOptions o;
  o.endpoint = W().endpoint;
  o.credentials.access_key_id = kAkid;
  o.credentials.secret_access_key = *SecretBytes::CopyOf(AsBytes(kSecret));
  return std::move(*KmsClient::Create(std::move(o)));
}

void Setup(const benchmark::State&) {
  World& w = W();
  if (!w.key_arn.empty()) return;
  auto c = NewClient();
  w.key_arn = (*c->CreateKey(""))["Arn"];
  w.blob = *c->Encrypt(w.key_arn, kPlaintext);
}

// --- over HTTP -------------------------------------------------------------------------------

void BM_Http_Encrypt(benchmark::State& state) {
  auto c = NewClient();
  for (auto _ : state) {
    auto r = c->Encrypt(W().key_arn, kPlaintext);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Http_Decrypt(benchmark::State& state) {
  auto c = NewClient();
  for (auto _ : state) {
    auto r = c->Decrypt(W().blob);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Http_DecryptRecipientFresh(benchmark::State& state) {
  auto c = NewClient();
  for (auto _ : state) {
    size_t i = W().next_http.fetch_add(1);
    if (i >= W().fresh_http.size()) {
      state.SkipWithError("out of fresh documents");
      break;
    }
    RecipientParam rp{"RSAES_OAEP_SHA_256", W().fresh_http[i]};
    auto r = c->Decrypt(W().blob, {}, "", &rp);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Http_DecryptRecipientReused(benchmark::State& state) {
  auto c = NewClient();
  RecipientParam rp{"RSAES_OAEP_SHA_256", W().reused};
  for (auto _ : state) {
    auto r = c->Decrypt(W().blob, {}, "", &rp);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

// --- over HTTP, pre-signed requests replayed ----------------------------------------------

namespace asio = boost::asio;
namespace http = boost::beast::http;

// A request as it goes on the wire: signed headers and JSON body.
using SignedRequest = http::request<http::string_body>;

// Decrypt of the world's blob, with `document` as the Recipient's when not null, signed now.
SignedRequest SignDecrypt(const Bytes* document) {
  nlohmann::json req = {{"CiphertextBlob", Base64EncodePublic(W().blob)}};
  if (document != nullptr) {
    req["Recipient"] = {{"KeyEncryptionAlgorithm", "RSAES_OAEP_SHA_256"},
                        {"AttestationDocument", Base64EncodePublic(*document)}};
  }
  const std::string body = req.dump();
  sigv4::Request r;
  r.method = "POST";
  r.target = "/";
  r.headers = {{"Host", "127.0.0.1:" + std::to_string(W().port)},
               {"Content-Type", "application/x-amz-json-1.1"},
               {"X-Amz-Target", "TrentService.Decrypt"}};
  r.body = AsBytes(body);
  sigv4::Credentials creds;
  creds.access_key_id = kAkid;
  creds.secret_access_key = *SecretBytes::CopyOf(AsBytes(kSecret));
  if (!sigv4::Sign(r, creds, "us-east-1", "kms", SystemClock::Get().NowMillis())) std::abort();
  SignedRequest out(http::verb::post, "/", 11);
  for (const auto& [k, v] : r.headers) out.set(k, v);
  out.body() = body;
  out.prepare_payload();
  return out;
}

// Sends `requests` in turn (one per iteration, wrapping around) and checks each answer.
void Replay(benchmark::State& state, const std::vector<SignedRequest>& requests,
            std::string_view expect_field, int port = 0) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"),
                  static_cast<unsigned short>(port != 0 ? port : W().port)},
                 ec);
  if (!ec) socket.set_option(asio::ip::tcp::no_delay(true), ec);
  if (ec) state.SkipWithError(("connect: " + ec.message()).c_str());
  boost::beast::flat_buffer buffer;
  buffer.reserve(16 * 1024);  // the whole answer in one read, as wrk reads
  size_t i = 0;
  for (auto _ : state) {
    if (ec) break;
    http::write(socket, requests[i++ % requests.size()], ec);
    http::response<http::string_body> res;
    if (!ec) http::read(socket, buffer, res, ec);
    if (ec) {
      state.SkipWithError(ec.message().c_str());
      break;
    }
    if (res.result_int() != 200 || res.body().find(expect_field) == std::string::npos) {
      state.SkipWithError(res.body().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Replay_Decrypt(benchmark::State& state) {
  Replay(state, {SignDecrypt(nullptr)}, "\"Plaintext\"");
}

void BM_Replay_DecryptRecipientFresh(benchmark::State& state) {
  // Each thread signs its own share of the fresh documents before timing starts.
  std::vector<SignedRequest> mine;
  for (int k = 0; k < kFreshPerThread; ++k) {
    size_t i = W().next_replay.fetch_add(1);
    if (i >= W().fresh_replay.size()) break;
    mine.push_back(SignDecrypt(&W().fresh_replay[i]));
  }
  if (mine.size() != static_cast<size_t>(kFreshPerThread)) {
    state.SkipWithError("out of fresh documents");
    for (auto _ : state) {
    }
    return;
  }
  Replay(state, mine, "\"CiphertextForRecipient\"");
}

void BM_Replay_DecryptRecipientReused(benchmark::State& state) {
  Replay(state, {SignDecrypt(&W().reused)}, "\"CiphertextForRecipient\"");
}

// The same reused-document request sent to the answer-only server: what the HTTP libraries and the
// loopback TCP path cost before any KMS work.
void BM_Replay_HttpFloor(benchmark::State& state) {
  Replay(state, {SignDecrypt(&W().reused)}, "\"CiphertextForRecipient\"", W().echo_port);
}

// The loopback floor under any HTTP library: a plain TCP exchange of the same sizes (the signed
// request's bytes out, an answer-sized block back) between a client thread and a server thread
// per connection, TCP_NODELAY on both ends.
bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}
bool RecvAll(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t k = recv(fd, p, n, 0);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

void BM_Tcp_LoopbackFloor(benchmark::State& state) {
  const SignedRequest req = SignDecrypt(&W().reused);
  size_t out = req.body().size();
  for (const auto& field : req) out += field.name_string().size() + field.value().size() + 4;
  constexpr size_t kAnswer = 900;  // about the HTTP answer with a CiphertextForRecipient
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    state.SkipWithError("loopback listener");
    for (auto _ : state) {
    }
    return;
  }
  int one = 1;
  int client = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  bool connected = connect(client, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  int conn = accept(listener, nullptr, nullptr);
  close(listener);
  setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::thread server([conn, out] {
    std::string in(out, '\0');
    std::string answer(kAnswer, 'a');
    while (RecvAll(conn, in.data(), in.size()) && SendAll(conn, answer.data(), answer.size())) {
    }
    close(conn);
  });
  std::string request(out, 'r');
  std::string answer(kAnswer, '\0');
  if (!connected) state.SkipWithError("loopback connect");
  for (auto _ : state) {
    if (!connected) break;
    if (!SendAll(client, request.data(), request.size()) ||
        !RecvAll(client, answer.data(), answer.size())) {
      state.SkipWithError("loopback exchange");
      break;
    }
  }
  shutdown(client, SHUT_RDWR);
  close(client);
  server.join();
  state.SetItemsProcessed(state.iterations());
}

// --- the floor of a reused-document request -----------------------------------------------------
// Work that every Decrypt with Recipient must do whatever the server's own code costs, measured
// with the libraries alone: nlohmann-json lexing the signed request body, OpenSSL's RSA-OAEP
// encryption of the content key (the public-key operation inside the envelope), and the two
// SHA-256 digests (SigV4's payload hash of the body, the verification cache's key over the
// document). With Replay_HttpFloor (the HTTP server with an answer-only handler) they are the part
// of a reused request that no change to cloister-kms's own code can remove.

void BM_Floor_JsonParseBody(benchmark::State& state) {
  const std::string body = SignDecrypt(&W().reused).body();
  for (auto _ : state) benchmark::DoNotOptimize(nlohmann::json::parse(body));
  state.SetItemsProcessed(state.iterations());
}

void BM_Floor_RsaOaepEncrypt(benchmark::State& state) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, W().rsa.get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_encrypt_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) <= 0) {
    state.SkipWithError("RSA-OAEP context");
    for (auto _ : state) {
    }
    return;
  }
  const Bytes content_key(32, 0x42);
  Bytes out(static_cast<size_t>(EVP_PKEY_get_size(W().rsa.get())));
  for (auto _ : state) {
    size_t n = out.size();
    if (EVP_PKEY_encrypt(ctx.get(), out.data(), &n, content_key.data(), content_key.size()) <= 0) {
      state.SkipWithError("EVP_PKEY_encrypt");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Floor_Digests(benchmark::State& state) {
  const std::string body = SignDecrypt(&W().reused).body();
  for (auto _ : state) {
    benchmark::DoNotOptimize(Sha256(AsBytes(body)));
    benchmark::DoNotOptimize(Sha256(W().reused));
  }
  state.SetItemsProcessed(state.iterations());
}

// --- crypto only (same work, no HTTP/JSON/SigV4/audit) ----------------------------------------

// Stops the benchmark with the error when a measured call failed: a failing call is usually
// much faster than a succeeding one and would otherwise pass for a result.
template <class T>
bool Ok(benchmark::State& state, const Result<T>& r) {
  if (r) return true;
  state.SkipWithError(r.error().message().c_str());
  return false;
}

void BM_Crypto_Encrypt(benchmark::State& state) {
  for (auto _ : state) {
    auto blob = SealBlob("k", W().material, kPlaintext, {});
    if (!Ok(state, blob)) break;
    benchmark::DoNotOptimize(blob);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Crypto_Decrypt(benchmark::State& state) {
  Bytes blob = *SealBlob("k", W().material, kPlaintext, {});
  for (auto _ : state) {
    auto pt = OpenBlob(blob, W().material, {});
    if (!Ok(state, pt)) break;
    benchmark::DoNotOptimize(pt);
  }
  state.SetItemsProcessed(state.iterations());
}

void RecipientCrypto(benchmark::State& state, const RecipientVerifier& v, bool fresh) {
  Bytes blob = *SealBlob("k", W().material, kPlaintext, {});
  for (auto _ : state) {
    const Bytes& doc =
        fresh ? W().fresh_crypto[W().next_crypto.fetch_add(1) % W().fresh_crypto.size()]
              : W().reused;
    auto info = v.Verify(doc);
    if (!Ok(state, info)) break;
    auto pt = OpenBlob(blob, W().material, {});
    if (!Ok(state, pt)) break;
    auto envelope = EnvelopeForRecipient(*pt, (*info)->public_key.get());
    if (!Ok(state, envelope)) break;
    benchmark::DoNotOptimize(envelope);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Crypto_DecryptRecipientFresh(benchmark::State& state) {
  RecipientCrypto(state, *W().cold, true);
}
void BM_Crypto_DecryptRecipientReused(benchmark::State& state) {
  RecipientCrypto(state, *W().warm, false);
}

// Breakdown of the reused-document path.
// The server's own decoding of the same body: strict JSON (common/json.cc, compiled with its
// own inlining limits) and the typed members, base64 included.
void BM_Stage_DecodeRequest(benchmark::State& state) {
  const std::string body = SignDecrypt(&W().reused).body();
  for (auto _ : state) {
    auto req = DecodeRequest("TrentService.Decrypt", body);
    if (!Ok(state, req)) break;
    benchmark::DoNotOptimize(req);
  }
  state.SetItemsProcessed(state.iterations());
}

// One audit line for a reused-document Decrypt: serialising it, its hash, and the two writes
// (the line, the head record) under the log's lock.
void BM_Stage_AuditAppend(benchmark::State& state) {
  static AuditLog* const log = [] {
    auto opened = AuditLog::Open((W().dir / "stage-audit.log").string());
    return opened ? opened->release() : nullptr;
  }();
  auto info = W().warm->Verify(W().reused);
  if (log == nullptr || !Ok(state, info)) {
    if (log == nullptr) state.SkipWithError("opening the audit log");
    for (auto _ : state) {
    }
    return;
  }
  AuditEvent e;
  e.time = "2026-12-06T00:00:00.000Z";
  e.request_id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
  e.principal = kArn;
  e.source = "127.0.0.1:40000";
  e.operation = "Decrypt";
  e.key = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
  e.decision = "Allow";
  e.statement = "Enable decrypt from enclave";
  e.recipient = std::shared_ptr<const std::string>(*info, &(*info)->audit_json);
  for (auto _ : state) {
    auto st = log->Append(e);
    if (!st) {
      state.SkipWithError(st.error().message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// The whole server-side work of one reused-document Decrypt without HTTP or sockets: the
// handler the server installs (SigV4, decoding, the cached verification, policy, envelope,
// answer, audit line), called directly on one thread. Steadier than the HTTP rows on a shared
// host, so it shows what a change to the handler's own code costs or saves.
void BM_Stage_HandleReused(benchmark::State& state) {
  static const HttpHandler handler = KmsHttpHandler(*W().service);
  const SignedRequest signed_request = SignDecrypt(&W().reused);
  HttpRequest in;
  in.method = "POST";
  in.target = "/";
  for (const auto& field : signed_request) {
    in.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  in.body = signed_request.body();
  in.remote = "127.0.0.1";
  for (auto _ : state) {
    HttpAnswer out = handler(in);
    if (out.status != 200 || out.body.find("\"CiphertextForRecipient\"") == std::string::npos) {
      state.SkipWithError(out.body.c_str());
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Crypto_VerifyCached(benchmark::State& state) {
  for (auto _ : state) {
    auto info = W().warm->Verify(W().reused);
    if (!Ok(state, info)) break;
    benchmark::DoNotOptimize(info);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_Crypto_EnvelopeOnly(benchmark::State& state) {
  auto info = W().warm->Verify(W().reused);
  if (!Ok(state, info)) return;
  for (auto _ : state) {
    auto envelope = EnvelopeForRecipient(kPlaintext, (*info)->public_key.get());
    if (!Ok(state, envelope)) break;
    benchmark::DoNotOptimize(envelope);
  }
  state.SetItemsProcessed(state.iterations());
}

#define KMS_BENCH(fn) BENCHMARK(fn)->Setup(Setup)->Threads(kThreads)->UseRealTime()
KMS_BENCH(BM_Crypto_Encrypt);
KMS_BENCH(BM_Http_Encrypt);
KMS_BENCH(BM_Crypto_Decrypt);
KMS_BENCH(BM_Http_Decrypt);
KMS_BENCH(BM_Crypto_DecryptRecipientFresh)->Iterations(kFreshPerThread);
KMS_BENCH(BM_Http_DecryptRecipientFresh)->Iterations(kFreshPerThread);
KMS_BENCH(BM_Crypto_DecryptRecipientReused);
KMS_BENCH(BM_Http_DecryptRecipientReused);
KMS_BENCH(BM_Replay_Decrypt);
KMS_BENCH(BM_Replay_DecryptRecipientFresh)->Iterations(kFreshPerThread);
KMS_BENCH(BM_Replay_DecryptRecipientReused);
KMS_BENCH(BM_Replay_HttpFloor);
KMS_BENCH(BM_Tcp_LoopbackFloor);
KMS_BENCH(BM_Floor_JsonParseBody);
KMS_BENCH(BM_Floor_RsaOaepEncrypt);
KMS_BENCH(BM_Stage_DecodeRequest);
KMS_BENCH(BM_Stage_AuditAppend);
BENCHMARK(BM_Stage_HandleReused)->Setup(Setup)->Threads(1)->UseRealTime();
KMS_BENCH(BM_Floor_Digests);
KMS_BENCH(BM_Crypto_VerifyCached);
KMS_BENCH(BM_Crypto_EnvelopeOnly);

}  // namespace
}  // namespace cloister::kms

int main(int argc, char** argv) {
  cloister::EnsureSodiumInitialized();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  auto& w = cloister::kms::W();
  w.server->Stop();
  if (w.server_thread.joinable()) w.server_thread.join();
  w.echo->Stop();
  if (w.echo_thread.joinable()) w.echo_thread.join();
  std::filesystem::remove_all(w.dir);
  return 0;
}
