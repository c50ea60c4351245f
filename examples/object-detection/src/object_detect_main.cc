// object-detect: the object-detection example's code run directly on files on the host
// (examples/object-detection/README.md "The host CLI"). `detect` gives the same detections
// report the app writes for the same images, model and options; `pack` and `unpack` make and
// open image batches.
#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "common/ossl.h"
#include "examples/object-detection/src/batch.h"
#include "examples/object-detection/src/detector.h"
#include "examples/object-detection/src/pipeline.h"

namespace cloister::objdet {
namespace {

constexpr size_t kMaxInputFileBytes = size_t{1} << 30;
constexpr size_t kMaxModelBytes = size_t{64} << 20;

// The files named on the command line, read and split into entries. Bare images are named by
// their file name; a batch keeps its entries' names. `storage` owns the bytes.
Result<std::vector<BatchEntry>> LoadInputs(const std::vector<std::string>& paths,
                                           std::vector<Bytes>& storage) {
  storage.reserve(paths.size());
  std::vector<BatchEntry> entries;
  std::set<std::string> names;
  for (const std::string& path : paths) {
    auto bytes = ReadFile(path, kMaxInputFileBytes);
    if (!bytes) return bytes.error().WithContext(path);
    storage.push_back(std::move(*bytes));
    auto parsed = ParseInput(storage.back());
    if (!parsed) return parsed.error().WithContext(path);
    if (parsed->size() == 1 && parsed->front().name == kSingleImageName &&
        SniffImageFormat(storage.back()) != ImageFormat::kUnknown) {
      parsed->front().name = std::filesystem::path(path).filename().string();
      if (!IsValidEntryName(parsed->front().name)) {
        return Error::InvalidArgument(path + ": the file name is not 1..64 of [A-Za-z0-9._-]");
      }
    }
    for (BatchEntry& e : *parsed) {
      if (!names.insert(e.name).second) {
        return Error::InvalidArgument(path + ": image name '" + e.name + "' given twice");
      }
      entries.push_back(std::move(e));
    }
  }
  if (entries.size() > kMaxBatchEntries) {
    return Error::InvalidArgument("more than " + std::to_string(kMaxBatchEntries) + " images");
  }
  return entries;
}

struct DetectArgs {
  std::vector<std::string> inputs;
  std::string model;
  std::string detectors = "blazeface";
  int size = 256;
  double threshold = 0.75;
  std::string cascade_dir = "/usr/share/opencv4/haarcascades";
  std::string annotated;
  bool redact = false;
  uint32_t annotated_max_side = 0;
  bool timing = false;
  uint64_t max_megapixels = 32;
};

int Detect(const DetectArgs& args) {
  DetectorOptions options;
  options.detectors.clear();
  for (size_t start = 0; start <= args.detectors.size();) {
    size_t comma = args.detectors.find(',', start);
    if (comma == std::string::npos) comma = args.detectors.size();
    options.detectors.push_back(args.detectors.substr(start, comma - start));
    start = comma + 1;
  }
  options.blazeface_size = args.size;
  options.blazeface_threshold = args.threshold;
  options.cascade_dir = args.cascade_dir;
  const bool blazeface = std::find(options.detectors.begin(), options.detectors.end(),
                                   kBlazeFace) != options.detectors.end();
  Bytes model;
  std::optional<std::string> model_sha384;
  if (blazeface) {
    if (args.model.empty()) {
      return ReportUsageError("object-detect", "blazeface needs --model FILE (the ONNX model)");
    }
    auto bytes = ReadFile(args.model, kMaxModelBytes);
    if (!bytes) return ReportFailure(bytes.error().WithContext("--model"));
    model = std::move(*bytes);
    model_sha384 = HexEncode(Sha384(model));
  }
  auto detectors = Detectors::Create(options, model);
  if (!detectors) return ReportFailure(detectors.error());
  std::vector<Bytes> storage;
  auto entries = LoadInputs(args.inputs, storage);
  if (!entries) return ReportFailure(entries.error());

  PipelineOptions pipeline;
  pipeline.annotate = !args.annotated.empty();
  pipeline.redact = args.redact;
  pipeline.annotated_max_side = args.annotated_max_side;
  pipeline.limits.max_pixels = args.max_megapixels * 1000000;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<ImageResult> results = RunBatch(*detectors, *entries, pipeline);
  const double total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (pipeline.annotate) {
    auto batch = SerializeBatch(AnnotatedEntries(results));
    if (!batch) return ReportFailure(batch.error());
    if (Status s = WriteFileAtomic(args.annotated, *batch, 0600); !s) {
      return ReportFailure(s.error().WithContext("--annotated"));
    }
  }
  if (args.timing) {
    double detect_ms = 0;
    for (const ImageResult& r : results) {
      detect_ms += r.detect_ms;
      std::cerr << nlohmann::json{{"name", r.name},
                                  {"decode_ms", r.decode_ms},
                                  {"detect_ms", r.detect_ms},
                                  {"annotate_ms", r.annotate_ms}}
                       .dump()
                << "\n";
    }
    std::cerr << nlohmann::json{{"images", results.size()},
                                {"total_ms", total_ms},
                                {"detect_ms_per_image",
                                 results.empty() ? 0.0 : detect_ms / results.size()}}
                     .dump()
              << "\n";
  }
  std::cout << DetectionsJson(model_sha384, options, results).dump(2) << "\n" << std::flush;
  for (const ImageResult& r : results) {
    if (r.error) return kExitFailed;
  }
  return kExitOk;
}

int Pack(const std::vector<std::string>& inputs, const std::string& output) {
  std::vector<Bytes> storage;
  auto entries = LoadInputs(inputs, storage);
  if (!entries) return ReportFailure(entries.error());
  auto batch = SerializeBatch(*entries);
  if (!batch) return ReportFailure(batch.error());
  if (Status s = WriteFileAtomic(output, *batch, 0600); !s) return ReportFailure(s.error());
  nlohmann::json names = nlohmann::json::array();
  for (const BatchEntry& e : *entries) names.push_back(e.name);
  std::cout << nlohmann::json{{"output", output}, {"images", names}}.dump(2) << "\n";
  return kExitOk;
}

int Unpack(const std::string& input, const std::string& output_dir) {
  auto bytes = ReadFile(input, kMaxInputFileBytes);
  if (!bytes) return ReportFailure(bytes.error().WithContext(input));
  auto entries = ParseBatch(*bytes);
  if (!entries) return ReportFailure(entries.error().WithContext(input));
  if (Status s = MakeDirs(output_dir, 0700); !s) return ReportFailure(s.error());
  nlohmann::json names = nlohmann::json::array();
  for (const BatchEntry& e : *entries) {
    // Names are checked by ParseBatch: no '/', not "." or "..".
    if (Status s = WriteFileAtomic(output_dir + "/" + e.name, e.data, 0600); !s) {
      return ReportFailure(s.error());
    }
    names.push_back(e.name);
  }
  std::cout << nlohmann::json{{"output_dir", output_dir}, {"files", names}}.dump(2) << "\n";
  return kExitOk;
}

int Main(int argc, char** argv) {
  InitLogging("object-detect");  // failures are logged on stderr; stdout carries the JSON
  CLI::App app{
      "object-detect: the object-detection example's detectors on files, on the host "
      "(examples/object-detection/README.md)"};
  app.set_version_flag("--version", "object-detect 0.1.0");
  app.require_subcommand(1);
  std::string known;
  for (const std::string& k : KnownDetectors()) known += (known.empty() ? "" : ", ") + k;

  DetectArgs d;
  CLI::App* detect = app.add_subcommand(
      "detect",
      "Run the detectors on images and image batches; prints the detections report "
      "(the app's 'detections' output). Exit 1 if an image failed.");
  detect->add_option("inputs", d.inputs, "JPEG/PNG files and image batches")->required();
  detect->add_option("--model", d.model, "BlazeFace's ONNX model (needed for blazeface)");
  detect->add_option("--detectors", d.detectors, "comma-separated: " + known)
      ->capture_default_str();
  detect->add_option("--size", d.size, "BlazeFace's input side: 256 (back model) or 128 (front)")
      ->capture_default_str();
  detect->add_option("--threshold", d.threshold, "BlazeFace's score threshold")
      ->capture_default_str();
  detect->add_option("--cascade-dir", d.cascade_dir, "the Haar cascades' directory")
      ->capture_default_str();
  detect->add_option("--annotated", d.annotated,
                     "write the annotated PNGs here, as an image batch (object-detect unpack)");
  detect->add_flag("--redact", d.redact, "blur the faces in the annotated PNGs");
  detect
      ->add_option("--annotated-max-side", d.annotated_max_side,
                   "shrink the annotated PNGs to at most this many pixels a side (0: full size)")
      ->capture_default_str();
  detect->add_flag("--timing", d.timing, "per-image timings as JSON lines on stderr");
  detect->add_option("--max-megapixels", d.max_megapixels, "refuse larger images")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));

  std::vector<std::string> pack_inputs;
  std::string pack_output;
  CLI::App* pack = app.add_subcommand("pack",
                                      "Make an image batch from JPEG/PNG files "
                                      "(named by their file names) and batches");
  pack->add_option("inputs", pack_inputs, "JPEG/PNG files and image batches")->required();
  pack->add_option("--output", pack_output, "the batch to write")->required();

  std::string unpack_input, unpack_dir;
  CLI::App* unpack = app.add_subcommand("unpack", "Write each entry of an image batch as a file");
  unpack->add_option("input", unpack_input, "the batch")->required();
  unpack->add_option("--output-dir", unpack_dir, "where to write the files")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (detect->parsed()) return Detect(d);
  if (pack->parsed()) return Pack(pack_inputs, pack_output);
  return Unpack(unpack_input, unpack_dir);
}

}  // namespace
}  // namespace cloister::objdet

int main(int argc, char** argv) { return cloister::objdet::Main(argc, argv); }
