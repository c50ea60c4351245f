#include "examples/object-detection/src/pipeline.h"

#include <chrono>
#include <exception>
#include <new>

namespace cloister::objdet {
namespace {

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

nlohmann::json DetectionJson(const Detection& d) {
  nlohmann::json j = {{"label", d.label},
                      {"detector", d.detector},
                      {"score", d.score},
                      {"box", {{"x", d.x}, {"y", d.y}, {"width", d.width}, {"height", d.height}}}};
  if (!d.keypoints.empty()) {
    nlohmann::json points = nlohmann::json::object();
    for (const Keypoint& k : d.keypoints) points[k.name] = {k.x, k.y};
    j["keypoints"] = std::move(points);
  }
  return j;
}

// Decodes, detects and annotates one entry into `r`; returns its error. Throws only what an
// allocation or OpenCV throws when memory runs out (RunBatch catches it).
std::optional<std::string> RunOne(Detectors& detectors, const BatchEntry& entry,
                                  const PipelineOptions& options, ImageResult& r) {
  auto start = std::chrono::steady_clock::now();
  auto image = DecodeImage(entry.data, options.limits);
  r.decode_ms = MillisSince(start);
  if (!image) return image.error().message();
  r.width = image->width;
  r.height = image->height;
  start = std::chrono::steady_clock::now();
  auto found = detectors.Detect(*image);
  r.detect_ms = MillisSince(start);
  if (!found) return found.error().message();
  r.detections = std::move(*found);
  if (options.annotate) {
    start = std::chrono::steady_clock::now();
    auto png = EncodePng(
        Downscale(Annotate(*image, r.detections, options.redact), options.annotated_max_side));
    r.annotate_ms = MillisSince(start);
    if (!png) return png.error().message();
    r.annotated_png = std::move(*png);
  }
  return std::nullopt;
}

}  // namespace

std::vector<ImageResult> RunBatch(Detectors& detectors, const std::vector<BatchEntry>& batch,
                                  const PipelineOptions& options) {
  std::vector<ImageResult> results;
  for (const BatchEntry& entry : batch) {
    ImageResult r;
    r.name = entry.name;
    // An image within the limits may still not fit in the memory the app is given (a 32
    // megapixel image takes 92 MiB, and its annotated copy as much again): it fails alone.
    try {
      r.error = RunOne(detectors, entry, options, r);
    } catch (const std::bad_alloc&) {
      r.error = "not enough memory for this image (" + std::to_string(r.width) + "x" +
                std::to_string(r.height) + ")";
    } catch (const std::exception& e) {  // OpenCV's, e.g. its own out-of-memory error
      r.error = "processing failed: " + std::string(e.what()).substr(0, 200);
    }
    if (r.error) {
      r.detections.clear();
      r.annotated_png.clear();
    }
    results.push_back(std::move(r));
  }
  return results;
}

nlohmann::json DetectionsJson(const std::optional<std::string>& model_sha384,
                              const DetectorOptions& options,
                              const std::vector<ImageResult>& results) {
  nlohmann::json images = nlohmann::json::array();
  for (const ImageResult& r : results) {
    if (r.error) {
      images.push_back({{"name", r.name}, {"error", *r.error}});
      continue;
    }
    nlohmann::json found = nlohmann::json::array();
    for (const Detection& d : r.detections) found.push_back(DetectionJson(d));
    images.push_back(
        {{"name", r.name}, {"width", r.width}, {"height", r.height}, {"detections", found}});
  }
  return {{"model_sha384", model_sha384 ? nlohmann::json(*model_sha384) : nlohmann::json()},
          {"detectors", options.detectors},
          {"blazeface_threshold", options.blazeface_threshold},
          {"images", std::move(images)}};
}

nlohmann::json CountsJson(const std::vector<ImageResult>& results) {
  size_t failed = 0;
  nlohmann::json labels = nlohmann::json::object();
  for (const ImageResult& r : results) {
    if (r.error) ++failed;
    for (const Detection& d : r.detections) {
      labels[d.label] = labels.value(d.label, 0) + 1;
    }
  }
  return {{"images", results.size()}, {"failed", failed}, {"detections", labels}};
}

std::vector<BatchEntry> AnnotatedEntries(const std::vector<ImageResult>& results) {
  std::vector<BatchEntry> entries;
  for (const ImageResult& r : results) {
    if (!r.error && !r.annotated_png.empty()) entries.push_back({r.name, r.annotated_png});
  }
  return entries;
}

}  // namespace cloister::objdet
