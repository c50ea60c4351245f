// object-detection-app: confidential object detection as a Cloister app (docs/apps.md; the
// formats and parameters are in examples/object-detection/README.md).
//
// What it reads:
//   $CLOISTER_MANIFEST  the manifest: its parties, app.outputs and app.parameters
//   $CLOISTER_INPUTS    <image_party>: an image batch (src/batch.h) or one JPEG/PNG;
//                       <model_party>, when the parameters name one: BlazeFace's ONNX model
//   /app/<model>        the model shipped in the image, when no model party is named
// What it writes:
//   $CLOISTER_OUTPUTS/private/<image_party>/detections  the detections report (JSON)
//   $CLOISTER_OUTPUTS/private/<image_party>/annotated   the annotated PNGs (an image batch),
//                                                       unless app.parameters.annotate is false
//   $CLOISTER_OUTPUTS/outcome.json  {"computation", "model_sha384", "model_source"} and, with
//                                   app.parameters.public "counts", the counts
//   $CLOISTER_OUTPUTS/error         on failure (exit 1): the reason; never an image's or the
//                                   model's content
//
// An image that does not decode fails alone: its entry in the detections report says why and
// the run goes on. Anything else wrong (the manifest, a missing input, a model that does not
// load, outputs beyond the runtime's limits) fails the run.
#include <openssl/crypto.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "common/bytes.h"
#include "common/file.h"
#include "common/json.h"
#include "common/ossl.h"
#include "common/result.h"
#include "examples/common/app_main.h"
#include "examples/object-detection/src/batch.h"
#include "examples/object-detection/src/detector.h"
#include "examples/object-detection/src/pipeline.h"
#include "formats/manifest.h"

namespace cloister::objdet {
namespace {

// The runtime reports at most this much of outputs/error, and takes private outputs of at
// most 16 MiB each (docs/apps.md "What the app writes").
constexpr size_t kMaxPrivateOutputBytes = size_t{16} << 20;
// An image party's input: a batch of at most kMaxBatchEntries images (its limit is the
// enclave's memory; this bounds what the app reads into its own).
constexpr size_t kMaxImagesInputBytes = size_t{512} << 20;
constexpr size_t kMaxModelBytes = size_t{64} << 20;
constexpr size_t kMaxManifestDepth = 16;
constexpr const char* kDefaultModel = "face_detection_back_256x256_barracuda.onnx";
constexpr const char* kDetectionsOutput = "detections";
constexpr const char* kAnnotatedOutput = "annotated";

struct Parameters {
  std::string image_party;
  std::optional<std::string> model_party;
  std::string model_file = kDefaultModel;
  DetectorOptions detector;
  PipelineOptions pipeline;
  bool public_counts = false;
};

Result<Parameters> ParseParameters(const nlohmann::json& app,
                                   const std::vector<formats::Party>& parties) {
  auto it = app.find("parameters");
  if (it == app.end() || !it->is_object()) {
    return Error::Malformed("app.parameters must be an object naming at least image_party");
  }
  const nlohmann::json& p = *it;
  static const std::set<std::string> kKnown = {
      "image_party",         "model_party", "model",  "detectors", "blazeface_size",
      "blazeface_threshold", "annotate",    "redact", "public",    "max_megapixels",
      "annotated_max_side"};
  for (const auto& [key, _] : p.items()) {
    if (!kKnown.contains(key)) return Error::Malformed("app.parameters." + key + " is unknown");
  }
  Parameters out;
  auto party = [&](const char* key) -> Result<std::string> {
    const auto& v = p.at(key);
    if (!v.is_string())
      return Error::Malformed(std::string("app.parameters.") + key + " must be a party id");
    for (const formats::Party& party : parties) {
      if (party.id == v.get<std::string>()) return party.id;
    }
    return Error::Malformed(std::string("app.parameters.") + key + " '" + v.get<std::string>() +
                            "' is not a party of the manifest");
  };
  if (!p.contains("image_party")) return Error::Malformed("app.parameters.image_party is missing");
  CLOISTER_ASSIGN_OR_RETURN(out.image_party, party("image_party"));
  if (p.contains("model_party")) {
    CLOISTER_ASSIGN_OR_RETURN(out.model_party, party("model_party"));
    if (*out.model_party == out.image_party) {
      return Error::Malformed("app.parameters.model_party is the image party");
    }
    if (p.contains("model")) {
      return Error::Malformed(
          "app.parameters: model (in the image) and model_party exclude "
          "each other");
    }
  }
  for (const formats::Party& party : parties) {
    if (party.id != out.image_party && party.id != out.model_party) {
      return Error::Malformed("party '" + party.id +
                              "' is neither app.parameters.image_party nor model_party");
    }
  }
  if (p.contains("model")) {
    const auto& v = p["model"];
    if (!v.is_string() || !IsValidEntryName(v.get<std::string>())) {
      return Error::Malformed("app.parameters.model must be a file name in /app");
    }
    out.model_file = v.get<std::string>();
  }
  if (p.contains("detectors")) {
    const auto& v = p["detectors"];
    if (!v.is_array() || v.empty() || v.size() > 8) {
      return Error::Malformed("app.parameters.detectors must be a list of 1..8 detector names");
    }
    out.detector.detectors.clear();
    for (const auto& d : v) {
      if (!d.is_string()) return Error::Malformed("app.parameters.detectors: names are strings");
      out.detector.detectors.push_back(d.get<std::string>());
    }
  }
  if (p.contains("blazeface_size")) {
    const auto& v = p["blazeface_size"];
    if (!v.is_number_integer() || (v.get<int64_t>() != 128 && v.get<int64_t>() != 256)) {
      return Error::Malformed("app.parameters.blazeface_size must be 128 or 256");
    }
    out.detector.blazeface_size = static_cast<int>(v.get<int64_t>());
  }
  if (p.contains("blazeface_threshold")) {
    const auto& v = p["blazeface_threshold"];
    if (!v.is_number() || !(v.get<double>() > 0 && v.get<double>() < 1)) {
      return Error::Malformed("app.parameters.blazeface_threshold must be a number in (0, 1)");
    }
    out.detector.blazeface_threshold = v.get<double>();
  }
  for (const char* key : {"annotate", "redact"}) {
    if (!p.contains(key)) continue;
    if (!p[key].is_boolean()) {
      return Error::Malformed(std::string("app.parameters.") + key + " must be true or false");
    }
    (std::string(key) == "annotate" ? out.pipeline.annotate : out.pipeline.redact) =
        p[key].get<bool>();
  }
  if (p.contains("public")) {
    const auto& v = p["public"];
    if (v != "counts" && v != "nothing") {
      return Error::Malformed("app.parameters.public must be \"counts\" or \"nothing\"");
    }
    out.public_counts = v == "counts";
  }
  if (p.contains("max_megapixels")) {
    const auto& v = p["max_megapixels"];
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 256) {
      return Error::Malformed("app.parameters.max_megapixels must be an integer 1..256");
    }
    out.pipeline.limits.max_pixels = static_cast<uint64_t>(v.get<int64_t>()) * 1000000;
  }
  if (p.contains("annotated_max_side")) {
    const auto& v = p["annotated_max_side"];
    if (!v.is_number_integer() || v.get<int64_t>() < 16 || v.get<int64_t>() > 65535) {
      return Error::Malformed("app.parameters.annotated_max_side must be an integer 16..65535");
    }
    out.pipeline.annotated_max_side = static_cast<uint32_t>(v.get<int64_t>());
  }
  // The private outputs the app writes must be exactly those the manifest declares.
  std::set<std::string> wanted = {kDetectionsOutput};
  if (out.pipeline.annotate) wanted.insert(kAnnotatedOutput);
  std::set<std::string> declared;
  if (auto outputs = app.find("outputs"); outputs != app.end() && outputs->is_array()) {
    for (const auto& o : *outputs) {
      if (!o.is_object() || !o.contains("name") || !o.contains("reader")) continue;
      if (o["reader"] != out.image_party) {
        return Error::Malformed("app.outputs: every output goes to the image party '" +
                                out.image_party + "' (README.md)");
      }
      declared.insert(o["name"].get<std::string>());
    }
  }
  if (declared != wanted) {
    return Error::Malformed(std::string("app.outputs must declare exactly ") +
                            (out.pipeline.annotate ? "\"detections\" and \"annotated\""
                                                   : "\"detections\" (annotate is false)") +
                            " for reader '" + out.image_party + "'");
  }
  return out;
}

Status WriteOutput(const std::string& path, const std::string& what, ByteSpan data) {
  if (data.size() > kMaxPrivateOutputBytes) {
    return Error::InvalidArgument(
        what + " take " + std::to_string(data.size()) +
        " bytes, more than the 16 MiB a private output may hold (docs/apps.md): send fewer "
        "images per run, or set app.parameters.annotated_max_side (or annotate to false)");
  }
  return WriteFileAtomic(path, data, 0600);
}

Result<nlohmann::json> Run(const std::string& app_dir, const std::string& manifest_path,
                           const std::string& inputs_dir, const std::string& outputs_dir) {
  auto manifest_bytes = ReadFile(manifest_path, formats::kMaxManifestBytes);
  if (!manifest_bytes) return manifest_bytes.error().WithContext("manifest");
  auto manifest = formats::ParseManifest(*manifest_bytes);
  if (!manifest) return manifest.error().WithContext("manifest");
  CLOISTER_ASSIGN_OR_RETURN(nlohmann::json doc,
                            ParseStrictJson(AsString(*manifest_bytes), kMaxManifestDepth));
  auto app = doc.find("app");
  if (app == doc.end() || !app->is_object()) return Error::Malformed("manifest: no app section");
  auto params = ParseParameters(*app, manifest->parties);
  if (!params) return params.error().WithContext("manifest");

  // The model: the model party's input, or the file shipped in the image.
  const bool blazeface =
      std::find(params->detector.detectors.begin(), params->detector.detectors.end(), kBlazeFace) !=
      params->detector.detectors.end();
  Bytes model;
  std::string model_source = "none";
  if (params->model_party) {
    auto bytes = ReadFile(inputs_dir + "/" + *params->model_party, kMaxModelBytes);
    if (!bytes) return bytes.error().WithContext("model party '" + *params->model_party + "'");
    model = std::move(*bytes);
    model_source = "party:" + *params->model_party;
  } else if (blazeface) {
    auto bytes = ReadFile(app_dir + "/" + params->model_file, kMaxModelBytes);
    if (!bytes) return bytes.error().WithContext("model in the image");
    model = std::move(*bytes);
    model_source = "image:" + params->model_file;
  }
  std::optional<std::string> model_sha384;
  if (!model.empty()) model_sha384 = HexEncode(Sha384(model));
  auto detectors = Detectors::Create(params->detector, model);
  OPENSSL_cleanse(model.data(), model.size());  // the model owner's secret; OpenCV has its copy
  if (!detectors) {
    return detectors.error().WithContext(params->model_party
                                             ? "model from party '" + *params->model_party + "'"
                                             : std::string("detectors"));
  }

  auto input = ReadFile(inputs_dir + "/" + params->image_party, kMaxImagesInputBytes);
  if (!input) return input.error().WithContext("image party '" + params->image_party + "'");
  auto batch = ParseInput(*input);
  if (!batch) return batch.error().WithContext("image party '" + params->image_party + "'");
  const std::vector<ImageResult> results = RunBatch(*detectors, *batch, params->pipeline);
  // Where the app's time went, on stderr: the runtime shows it only in a debug-mode enclave's
  // console (docs/apps.md), where bench/app_bench.py reads it. Totals over the batch only.
  double decode_ms = 0, detect_ms = 0, annotate_ms = 0;
  for (const ImageResult& r : results) {
    decode_ms += r.decode_ms;
    detect_ms += r.detect_ms;
    annotate_ms += r.annotate_ms;
  }
  std::fprintf(stderr,
               "object-detection-app: event=objdet_phases images=%zu decode_ms=%.1f "
               "inference_ms=%.1f annotate_ms=%.1f\n",
               results.size(), decode_ms, detect_ms, annotate_ms);

  const std::string private_dir = outputs_dir + "/private/" + params->image_party + "/";
  const std::string report = DetectionsJson(model_sha384, params->detector, results).dump(2) + "\n";
  CLOISTER_RETURN_IF_ERROR(
      WriteOutput(private_dir + kDetectionsOutput, "the detections", AsBytes(report)));
  if (params->pipeline.annotate) {
    CLOISTER_ASSIGN_OR_RETURN(Bytes annotated, SerializeBatch(AnnotatedEntries(results)));
    CLOISTER_RETURN_IF_ERROR(
        WriteOutput(private_dir + kAnnotatedOutput, "the annotated images", annotated));
  }
  OPENSSL_cleanse(input->data(), input->size());

  nlohmann::json outcome = {
      {"computation", "object-detection"},
      {"model_sha384", model_sha384 ? nlohmann::json(*model_sha384) : nlohmann::json()},
      {"model_source", model_source}};
  if (params->public_counts) outcome["counts"] = CountsJson(results);
  return outcome;
}

}  // namespace
}  // namespace cloister::objdet

int main(int argc, char** argv) {
  // The runtime starts the app as /app/<command>: the model shipped in the image sits beside it.
  std::string app_dir = argc > 0 ? argv[0] : "";
  app_dir = app_dir.find('/') == std::string::npos ? "." : app_dir.substr(0, app_dir.rfind('/'));
  return cloister::examples::AppMain(
      "object-detection-app", [&](const cloister::examples::AppDirs& dirs) {
        return cloister::objdet::Run(app_dir, dirs.manifest, dirs.inputs, dirs.outputs);
      });
}
