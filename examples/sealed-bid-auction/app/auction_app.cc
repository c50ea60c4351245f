// auction_app: the sealed-bid auction as a Cloister app (docs/apps.md), for comparing a
// computation run as an app with the same computation built into the runtime (bench/app_bench.sh).
// It runs the runtime's own auction code (enclave/auction.h) and writes the same data as the
// built-in's outcome, as JSON.
//
// What it reads (docs/apps.md, "What the app sees"):
//   $CLOISTER_MANIFEST  the manifest: its parties and computation_id (formats/manifest.h), and
//                       app.parameters = the auction's settings, exactly the built-in's
//                       "auction" section ({"rule", "tie_break", "lots"}; docs/auction.md)
//   $CLOISTER_INPUTS    one bid file per party, named by its party id (any shape docs/auction.md
//                       accepts)
// What it writes:
//   $CLOISTER_OUTPUTS/outcome.json  {"computation": "sealed-bid-auction", "rule": ...,
//                                    "lots": [{"lot", "winner", "price"}, ...]}
//   $CLOISTER_OUTPUTS/error         on failure (exit 1): the reason, naming the party; as the
//                                   built-in's, no bid amount ever appears in it
//
// The tie-break hashes the manifest's computation_id with the lot and the party, so an app
// manifest with the built-in's computation_id decides every tie as the built-in does.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include <openssl/crypto.h>

#include "common/bytes.h"
#include "common/file.h"
#include "common/json.h"
#include "common/result.h"
#include "examples/common/app_main.h"
#include "enclave/auction.h"
#include "formats/manifest.h"
#include "formats/receipt.h"

namespace cloister::examples {
namespace {

// The runtime reports at most this much of outputs/error (docs/apps.md).
// A bid file in either of its shapes (enclave/auction.h).
constexpr size_t kMaxInputBytes = std::max(enclave::kMaxBidFileBytes, enclave::kMaxBidJsonBytes);
// As the runtime's manifest parser (formats/manifest.cc).
constexpr size_t kMaxManifestDepth = 16;

// Returns the manifest's app.parameters (the auction settings).
Result<nlohmann::json> AuctionParameters(ByteSpan manifest_bytes) {
  CLOISTER_ASSIGN_OR_RETURN(
      nlohmann::json doc,
      ParseStrictJson(std::string_view(reinterpret_cast<const char*>(manifest_bytes.data()),
                                       manifest_bytes.size()),
                      kMaxManifestDepth));
  auto app = doc.find("app");
  if (app == doc.end() || !app->is_object()) {
    return Error::Malformed("no app section");
  }
  auto parameters = app->find("parameters");
  if (parameters == app->end() || !parameters->is_object()) {
    return Error::Malformed(
        "app.parameters must be the auction's settings (rule, tie_break, lots)");
  }
  return *parameters;
}

// Runs the auction over the inputs; returns the outcome as JSON.
Result<nlohmann::json> RunAuction(const std::string& manifest_path,
                                  const std::string& inputs_dir) {
  auto manifest_bytes = ReadFile(manifest_path, formats::kMaxManifestBytes);
  if (!manifest_bytes) return manifest_bytes.error().WithContext("manifest");
  auto parsed = formats::ParseManifest(*manifest_bytes);
  if (!parsed) return parsed.error().WithContext("manifest");
  formats::Manifest manifest = std::move(*parsed);
  auto parameters = AuctionParameters(*manifest_bytes);
  if (!parameters) return parameters.error().WithContext("manifest");
  // The app runs the built-in's computation under its own name.
  manifest.computation = std::string(enclave::kAuctionComputation);
  auto auction = enclave::Auction::Create(manifest, *parameters);
  if (!auction) return auction.error().WithContext("manifest app.parameters");

  for (const formats::Party& party : manifest.parties) {
    if (party.id == "." || party.id == "..") {
      return Error::Malformed("manifest party id '" + party.id + "' names no input file");
    }
    auto bids = ReadFile(inputs_dir + "/" + party.id, kMaxInputBytes);
    if (!bids) return bids.error().WithContext(party.id);
    Status added = (*auction)->AddInput(party.id, *bids);
    OPENSSL_cleanse(bids->data(), bids->size());  // the bids are the parties' secrets
    if (!added) return added.error().WithContext(party.id);
  }
  CLOISTER_ASSIGN_OR_RETURN(enclave::ComputationResult result, (*auction)->Outcome());
  return formats::CborToJson(result.outcome);
}

}  // namespace
}  // namespace cloister::examples

int main() {
  return cloister::examples::AppMain("auction_app", [](const cloister::examples::AppDirs& dirs) {
    return cloister::examples::RunAuction(dirs.manifest, dirs.inputs);
  });
}
