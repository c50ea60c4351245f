// Enclave commands of the `cloister` CLI, with nitro-cli's argument names and JSON shapes:
// build-enclave, describe-eif, sign-eif (images, docs/eif.md) and run-enclave,
// describe-enclaves, terminate-enclave, console (the launcher, parent/launcher.h).
#include <openssl/x509.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "attestation/eif.h"
#include "cli/commands.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/ossl.h"
#include "parent/image_builder.h"
#include "parent/launcher.h"
#include "parent/runtime_check.h"

namespace cloister::cli {
namespace {

void PrintOrdered(const nlohmann::ordered_json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

Result<std::optional<uint64_t>> SourceDateEpoch() {
  const char* env = std::getenv("SOURCE_DATE_EPOCH");
  if (env == nullptr || *env == '\0') return std::optional<uint64_t>();
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(env, &end, 10);
  if (errno != 0 || *end != '\0' || env[0] == '-') {
    return Error::InvalidArgument("SOURCE_DATE_EPOCH is not a number of seconds");
  }
  return std::optional<uint64_t>(v);
}

std::string Asn1TimeText(const ASN1_TIME* t) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), t) != 1) return "";
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

// nitro-cli's SigningCertificate object for describe-eif.
nlohmann::ordered_json CertificateJson(const Bytes& der) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  auto cert = ParseCertificateDer(der);
  if (!cert) return j;
  nlohmann::ordered_json issuer = nlohmann::ordered_json::object();
  X509_NAME* name = X509_get_issuer_name(cert->get());
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    char key[80];
    OBJ_obj2txt(key, sizeof(key), X509_NAME_ENTRY_get_object(e), 0);
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (len >= 0) {
      issuer[key] = std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
      OPENSSL_free(utf8);
    }
  }
  int nid = X509_get_signature_nid(cert->get());
  const ASN1_BIT_STRING* sig = nullptr;
  X509_get0_signature(&sig, nullptr, cert->get());
  std::string sig_hex;
  if (sig != nullptr) {
    static const char kHex[] = "0123456789ABCDEF";
    for (int i = 0; i < sig->length; ++i) {
      if (i) sig_hex += ':';
      sig_hex += kHex[sig->data[i] >> 4];
      sig_hex += kHex[sig->data[i] & 15];
    }
  }
  j["IssuerName"] = issuer;
  j["Algorithm"] = nid == NID_undef ? "unknown" : OBJ_nid2ln(nid);
  j["NotBefore"] = Asn1TimeText(X509_get0_notBefore(cert->get()));
  j["NotAfter"] = Asn1TimeText(X509_get0_notAfter(cert->get()));
  j["Signature"] = sig_hex;
  return j;
}

Result<nlohmann::ordered_json> DescribeEif(const std::string& path) {
  CLOISTER_ASSIGN_OR_RETURN(eif::Image image, parent::LoadImage(path));
  CLOISTER_ASSIGN_OR_RETURN(eif::Measurements m, eif::Measure(image));
  CLOISTER_ASSIGN_OR_RETURN(auto sig, eif::CheckSignature(image, m));
  nlohmann::ordered_json j;
  j["EifVersion"] = image.version;
  j["Measurements"] = parent::MeasurementsJson(m);
  j["IsSigned"] = sig.has_value();
  if (sig) j["SigningCertificate"] = CertificateJson(sig->certificate_der);
  // ParseImage refuses an image whose CRC does not match, so a described image passed.
  j["CheckCRC"] = true;
  if (sig) j["SignatureCheck"] = sig->signature_valid;
  if (const eif::Section* meta = image.Find(eif::SectionType::kMetadata)) {
    auto parsed = nlohmann::ordered_json::parse(meta->data.begin(), meta->data.end(), nullptr,
                                                /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      return Error::Malformed(path + ": the metadata section is not a JSON object");
    }
    if (parsed.contains("ImageName")) j["ImageName"] = parsed["ImageName"];
    if (parsed.contains("ImageVersion")) j["ImageVersion"] = parsed["ImageVersion"];
    nlohmann::ordered_json meta_out = nlohmann::ordered_json::object();
    if (parsed.contains("BuildMetadata") && parsed["BuildMetadata"].is_object()) {
      for (auto& [k, v] : parsed["BuildMetadata"].items()) meta_out[k] = v;
    }
    if (parsed.contains("DockerInfo")) meta_out["DockerInfo"] = parsed["DockerInfo"];
    if (parsed.contains("CustomMetadata")) meta_out["CustomMetadata"] = parsed["CustomMetadata"];
    j["Metadata"] = meta_out;
  }
  return j;
}

// Largest manifest build-enclave reads (the image builder's own limit).
constexpr size_t kMaxManifestFile = size_t{1} << 20;

// The image's name and version when --name/--version are not given: the manifest's "name" and
// "version" (an app manifest such as examples/hello), else its "computation_id" as the name; else
// "cloister-enclave" and "0.0.0". describe-eif prints them as ImageName and ImageVersion.
std::pair<std::string, std::string> ManifestNameAndVersion(const std::string& path) {
  std::pair<std::string, std::string> out = {"cloister-enclave", "0.0.0"};
  auto text = ReadFile(path, kMaxManifestFile);
  if (!text) return out;
  auto doc = nlohmann::json::parse(text->begin(), text->end(), nullptr, false);
  if (!doc.is_object()) return out;
  auto string_of = [&](const char* key) -> std::string {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>().substr(0, 128) : "";
  };
  if (std::string n = string_of("name"); !n.empty()) {
    out.first = n;
  } else if (std::string id = string_of("computation_id"); !id.empty()) {
    out.first = id;
  }
  if (std::string v = string_of("version"); !v.empty()) out.second = v;
  return out;
}

struct BuildArgs {
  std::string manifest, app_dir, output, runtime, cert, key, name, version;
};
struct SignArgs {
  std::string eif_path, cert, key;
};
struct RunArgs {
  std::string eif_path, name, platform_dir;
  uint32_t cpu_count = 0;
  uint64_t memory = 0;
  uint32_t cid = 0;
  bool debug = false;
  int timeout_ms = parent::kDefaultHeartbeatTimeoutMs;
};
struct TerminateArgs {
  std::string id, name;
  bool all = false;
};
struct ConsoleArgs {
  std::string id;
  int disconnect_timeout = 0;
};

Result<parent::EnclaveRecord> FindEnclave(const std::string& id, const std::string& name) {
  CLOISTER_ASSIGN_OR_RETURN(auto all, parent::ListEnclaves(parent::DefaultRunDir()));
  for (auto& r : all) {
    if ((!id.empty() && r.id == id) || (!name.empty() && r.name == name)) return std::move(r);
  }
  return Error::NotFound("no running enclave " + (id.empty() ? "named " + name : id));
}

}  // namespace

void RegisterEnclaveCommands(CLI::App& app, Action& run) {
  // build-enclave
  auto build = std::make_shared<BuildArgs>();
  CLI::App* b = app.add_subcommand("build-enclave", "Build an enclave image (EIF) and print its PCRs");
  b->add_option("--manifest", build->manifest, "Computation manifest (.json/.yaml)")->required();
  b->add_option("--app-dir", build->app_dir,
                "Directory packed as /app (files, directories, links inside it), with the "
                "library closure of its programs and the manifest's app.packages");
  b->add_option("--output-file", build->output, "Where to write the image")->required();
  b->add_option("--runtime", build->runtime,
                "Enclave runtime binary (default: cloister-enclave built with this CLI)");
  b->add_option("--signing-certificate", build->cert, "PEM certificate to sign the image with");
  b->add_option("--private-key", build->key, "PEM file of the certificate's P-384 private key");
  b->add_option("--name", build->name,
                "Image name recorded in the metadata (default: the manifest's \"name\", else "
                "its \"computation_id\")");
  b->add_option("--version", build->version,
                "Image version recorded in the metadata (default: the manifest's \"version\", "
                "else 0.0.0)");
  b->callback([build, &run] {
    run = [build]() -> int {
      if (Status st = CheckOutputPath("--output-file", build->output); !st) {
        return ReportFailure(st.error());
      }
      std::string runtime = build->runtime;
      if (runtime.empty()) {
        auto path = parent::DefaultRuntimePath();
        if (!path) return ReportFailure(path.error());
        runtime = *path;
      }
      // Before anything is written, the runtime about to be packed checks the manifest with the
      // code it runs at boot (parent/runtime_check.h): an image whose runtime refuses its
      // manifest would print PCRs that parties might grant their keys to, and fail only at
      // launch.
      if (auto read = ReadFile(build->manifest, kMaxManifestFile); !read) {
        return ReportFailure(read.error().WithContext("--manifest"));
      }
      if (Status st = parent::CheckManifestWithRuntime(runtime, build->manifest); !st) {
        if (st.error().code() == ErrorCode::kMalformed) {
          return ReportFailure(Error::Malformed(
              "--manifest " + build->manifest + ": the enclave runtime would refuse it at boot (" +
              st.error().message() + "); nothing was written"));
        }
        return ReportFailure(st.error().WithContext("--manifest"));
      }
      parent::BuildOptions o;
      o.manifest_path = build->manifest;
      o.app_dir = build->app_dir;
      o.signing_certificate_path = build->cert;
      o.private_key_path = build->key;
      const auto [manifest_name, manifest_version] = ManifestNameAndVersion(build->manifest);
      o.name = build->name.empty() ? manifest_name : build->name;
      o.version = build->version.empty() ? manifest_version : build->version;
      o.tool_version = CLOISTER_VERSION;
      auto epoch = SourceDateEpoch();
      if (!epoch) return ReportFailure(epoch.error());
      o.source_date_epoch = *epoch;
      o.runtime_path = runtime;
      auto image = parent::BuildEnclaveImage(o);
      if (!image) return ReportFailure(image.error());
      if (auto st = WriteFileAtomic(build->output, image->bytes, 0644); !st) {
        return ReportFailure(st.error());
      }
      PrintOrdered({{"Measurements", parent::MeasurementsJson(image->measurements)}});
      return kExitOk;
    };
  });

  // describe-eif
  auto describe_path = std::make_shared<std::string>();
  CLI::App* d = app.add_subcommand("describe-eif", "Check an image and print what it holds");
  d->add_option("--eif-path", *describe_path, "The image")->required();
  d->callback([describe_path, &run] {
    run = [describe_path]() -> int {
      auto j = DescribeEif(*describe_path);
      if (!j) return ReportFailure(j.error());
      PrintOrdered(*j);
      return kExitOk;
    };
  });

  // sign-eif
  auto sign = std::make_shared<SignArgs>();
  CLI::App* s = app.add_subcommand("sign-eif", "Sign an image's PCR0 (adds PCR8)");
  s->add_option("--eif-path", sign->eif_path, "The image, rewritten in place")->required();
  s->add_option("--signing-certificate", sign->cert, "PEM certificate")->required();
  s->add_option("--private-key", sign->key, "PEM file of the P-384 private key")->required();
  s->callback([sign, &run] {
    run = [sign]() -> int {
      auto bytes = ReadFile(sign->eif_path, eif::kMaxImageSize);
      if (!bytes) return ReportFailure(bytes.error());
      auto image = parent::SignEnclaveImage(*bytes, sign->cert, sign->key);
      if (!image) return ReportFailure(image.error().WithContext(sign->eif_path));
      if (auto st = WriteFileAtomic(sign->eif_path, image->bytes, 0644); !st) {
        return ReportFailure(st.error());
      }
      PrintOrdered({{"Measurements", parent::MeasurementsJson(image->measurements)}});
      return kExitOk;
    };
  });

  // run-enclave
  auto ra = std::make_shared<RunArgs>();
  CLI::App* r = app.add_subcommand("run-enclave", "Start an enclave from an image in the sandbox");
  r->add_option("--eif-path", ra->eif_path, "The image")->required();
  r->add_option("--cpu-count", ra->cpu_count, "Number of CPUs")->required()->check(
      CLI::Range(1u, 4096u));
  r->add_option("--memory", ra->memory, "Memory in MiB")->required()->check(
      CLI::Range(uint64_t{1}, uint64_t{1} << 22));
  r->add_option("--enclave-cid", ra->cid, "vsock CID (default: the first free from 16)");
  r->add_option("--enclave-name", ra->name, "Name (default: the image file name)");
  r->add_flag("--debug-mode", ra->debug, "Debug mode: console available, PCR0-2 attest as zero");
  r->add_option("--platform-dir", ra->platform_dir,
                "Emulated platform state (default: $XDG_STATE_HOME/cloister/platform)");
  r->add_option("--timeout-ms", ra->timeout_ms, "How long to wait for the heartbeat")
      ->capture_default_str()->check(CLI::Range(100, 600000));
  r->callback([ra, &run] {
    run = [ra]() -> int {
      parent::RunOptions o;
      o.eif_path = ra->eif_path;
      o.cpu_count = ra->cpu_count;
      o.memory_mib = ra->memory;
      if (ra->cid != 0) o.enclave_cid = ra->cid;
      o.enclave_name = ra->name;
      o.debug_mode = ra->debug;
      o.platform_dir = ra->platform_dir;
      o.heartbeat_timeout_ms = ra->timeout_ms;
      auto rec = parent::RunEnclave(o);
      if (!rec) return ReportFailure(rec.error());
      PrintOrdered(parent::RunEnclaveJson(*rec));
      return kExitOk;
    };
  });

  // describe-enclaves
  CLI::App* de = app.add_subcommand("describe-enclaves", "List the running enclaves");
  de->callback([&run] {
    run = []() -> int {
      auto all = parent::ListEnclaves(parent::DefaultRunDir());
      if (!all) return ReportFailure(all.error());
      nlohmann::ordered_json j = nlohmann::ordered_json::array();
      for (const auto& rec : *all) j.push_back(parent::DescribeEnclaveJson(rec));
      PrintOrdered(j);
      return kExitOk;
    };
  });

  // terminate-enclave
  auto ta = std::make_shared<TerminateArgs>();
  CLI::App* t = app.add_subcommand("terminate-enclave", "Stop an enclave");
  auto* id_opt = t->add_option("--enclave-id", ta->id, "The enclave's ID");
  auto* name_opt = t->add_option("--enclave-name", ta->name, "The enclave's name");
  auto* all_opt = t->add_flag("--all", ta->all, "Every running enclave");
  id_opt->excludes(name_opt)->excludes(all_opt);
  name_opt->excludes(all_opt);
  t->callback([ta, &run] {
    run = [ta]() -> int {
      if (ta->id.empty() && ta->name.empty() && !ta->all) {
        return ReportFailure(Error::InvalidArgument(
            "give --enclave-id, --enclave-name or --all"));
      }
      std::vector<parent::EnclaveRecord> targets;
      if (ta->all) {
        auto all = parent::ListEnclaves(parent::DefaultRunDir());
        if (!all) return ReportFailure(all.error());
        targets = std::move(*all);
      } else {
        auto one = FindEnclave(ta->id, ta->name);
        if (!one) return ReportFailure(one.error());
        targets.push_back(std::move(*one));
      }
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& rec : targets) {
        auto st = parent::TerminateEnclave(rec);
        if (!st) return ReportFailure(st.error());
        out.push_back({{"EnclaveName", rec.name}, {"EnclaveID", rec.id}, {"Terminated", true}});
      }
      PrintOrdered(ta->all ? out : out[0]);
      return kExitOk;
    };
  });

  // console
  auto ca = std::make_shared<ConsoleArgs>();
  CLI::App* c = app.add_subcommand("console", "Follow a debug-mode enclave's console");
  c->add_option("--enclave-id", ca->id, "The enclave's ID")->required();
  c->add_option("--disconnect-timeout", ca->disconnect_timeout,
                "Stop following after this many seconds (0: until the enclave stops)")
      ->check(CLI::Range(0, 86400));
  c->callback([ca, &run] {
    run = [ca]() -> int {
      auto rec = FindEnclave(ca->id, "");
      if (!rec) return ReportFailure(rec.error());
      auto st = parent::StreamConsole(*rec, ca->disconnect_timeout, std::cout);
      if (!st) return ReportFailure(st.error());
      return kExitOk;
    };
  });
}

}  // namespace cloister::cli
