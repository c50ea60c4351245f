// The object-detection pipeline shared by the host CLI (object-detect) and the app
// (object-detection-app), so both give the same detections for the same images and model:
// decode each image of a batch, run the detectors, draw the annotated copy, and report per
// image - a hostile or broken image fails alone, with its reason, and the others go on.
//
// Thread safety: RunBatch uses `detectors`, which is not thread-safe; the JSON functions are.
#ifndef CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_PIPELINE_H_
#define CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_PIPELINE_H_

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "examples/object-detection/src/batch.h"
#include "examples/object-detection/src/detector.h"
#include "examples/object-detection/src/image_codec.h"

namespace cloister::objdet {

struct PipelineOptions {
  bool annotate = true;  // make the annotated PNGs
  bool redact = false;   // blur faces in them
  // Shrink the annotated copies so that neither side exceeds this (0: full size). A private
  // output holds at most 16 MiB (docs/apps.md); a 640x480 photo's PNG is about 300 KB.
  uint32_t annotated_max_side = 0;
  DecodeLimits limits;
};

struct ImageResult {
  std::string name;
  std::optional<std::string> error;  // set when this image failed (then nothing below is)
  uint32_t width = 0, height = 0;
  std::vector<Detection> detections;
  Bytes annotated_png;  // when PipelineOptions::annotate
  // Wall-clock milliseconds of each phase (not part of the JSON).
  double decode_ms = 0, detect_ms = 0, annotate_ms = 0;
};

// Runs `detectors` over every entry of `batch`, in order. Never fails as a whole: an entry that
// does not decode or that a detector fails on gets `error`.
std::vector<ImageResult> RunBatch(Detectors& detectors, const std::vector<BatchEntry>& batch,
                                  const PipelineOptions& options);

// The detections report (README.md "The detections"): {"model_sha384", "detectors",
// "blazeface_threshold", "images": [{"name", "width", "height", "detections": [...]} or
// {"name", "error"}]}. `model_sha384` is null when BlazeFace is not run.
nlohmann::json DetectionsJson(const std::optional<std::string>& model_sha384,
                              const DetectorOptions& options,
                              const std::vector<ImageResult>& results);

// {"images": N, "failed": F, "detections": {label: count, ...}} over `results`.
nlohmann::json CountsJson(const std::vector<ImageResult>& results);

// Returns the annotated PNGs of the images that succeeded, named as their images, for
// SerializeBatch (views into `results`).
std::vector<BatchEntry> AnnotatedEntries(const std::vector<ImageResult>& results);

}  // namespace cloister::objdet

#endif  // CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_PIPELINE_H_
