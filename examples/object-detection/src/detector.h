// The detectors of the object-detection example (examples/object-detection/README.md
// "Detection"): BlazeFace (faces with six keypoints; an ONNX model run by OpenCV 4.6's DNN
// module), OpenCV's HOG people detector, and OpenCV's Haar cascades (from Debian's opencv-data),
// and the annotated copy of an image (boxes drawn; faces blurred in redaction mode).
//
// OpenCV stays behind this header: the app and the CLI see only Image, Detection and Detectors.
//
// Thread safety: a Detectors is not thread-safe (OpenCV's Net keeps per-run state); use one per
// thread. Annotate is thread-safe.
#ifndef CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_DETECTOR_H_
#define CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_DETECTOR_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "examples/object-detection/src/image_codec.h"

namespace cloister::objdet {

// The detector names DetectorOptions::detectors accepts.
inline constexpr std::string_view kBlazeFace = "blazeface";
inline constexpr std::string_view kHogPeople = "hog-people";
// Haar cascades: "haar-frontalface", "haar-profileface", "haar-fullbody", "haar-upperbody".
std::vector<std::string> KnownDetectors();

// BlazeFace's six keypoints, in the model's order (MediaPipe's face detection: right eye, left
// eye, nose tip, mouth centre, right ear tragion, left ear tragion; "right" is the subject's).
inline constexpr const char* kBlazeFaceKeypoints[6] = {
    "right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion"};

struct Keypoint {
  std::string name;
  double x = 0, y = 0;  // pixels
};

// One object found. Boxes are in pixels of the decoded image, clipped to it.
struct Detection {
  std::string label;     // "face", "person", "upper_body"
  std::string detector;  // the detector's name
  // blazeface: the sigmoid of the model's logit, 0..1; hog-people: the SVM margin of the best
  // window in the group; haar-*: the number of overlapping windows grouped into it.
  double score = 0;
  double x = 0, y = 0, width = 0, height = 0;
  std::vector<Keypoint> keypoints;  // blazeface only
};

struct DetectorOptions {
  std::vector<std::string> detectors = {std::string(kBlazeFace)};
  // BlazeFace: candidates scoring above this are kept (0.5 finds faces on animals).
  double blazeface_threshold = 0.75;
  // BlazeFace: the model's input side, 256 (face_detection_back_256x256) or 128 (front).
  int blazeface_size = 256;
  // Where the Haar cascades are (Debian's opencv-data).
  std::string cascade_dir = "/usr/share/opencv4/haarcascades";
};

class Detectors {
 public:
  // Loads the detectors `options` names. `model` is BlazeFace's ONNX bytes (read only here;
  // required when "blazeface" is named, else ignored); it is hostile: it is first loaded and run
  // once in a child process (fork), so that a model that crashes OpenCV fails this call - call
  // Create before the program starts threads. kInvalidArgument for an unknown detector or
  // option; kMalformed if the model crashes, does not load or does not have BlazeFace's
  // outputs (the message never quotes the model); kNotFound if a cascade file is missing;
  // kIo if the child cannot be started.
  static Result<Detectors> Create(const DetectorOptions& options, ByteSpan model);
  Detectors(Detectors&&) noexcept;
  Detectors& operator=(Detectors&&) noexcept;
  ~Detectors();

  // Runs every detector on `image`; detections are ordered by detector (in the options' order),
  // then by score (highest first), then position. kInternal if OpenCV fails on this image.
  Result<std::vector<Detection>> Detect(const Image& image);

  struct Impl;  // public only for detector.cc's helpers

 private:
  explicit Detectors(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Returns a copy of `image` with every detection's box, label and score (and keypoints) drawn;
// with `redact`, each face's box is blurred beyond recognition first (shrunk to at most 8x8
// pixels and enlarged again) and its keypoints are not drawn.
Image Annotate(const Image& image, const std::vector<Detection>& detections, bool redact);

// Returns `image` shrunk (OpenCV's area interpolation) so that neither side exceeds `max_side`,
// keeping its aspect ratio; `image` itself if it fits or `max_side` is 0.
Image Downscale(const Image& image, uint32_t max_side);

}  // namespace cloister::objdet

#endif  // CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_DETECTOR_H_
