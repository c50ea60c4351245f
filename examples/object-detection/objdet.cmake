# examples/object-detection (README.md there): the image codec and batch format (no OpenCV),
# the detectors and pipeline (OpenCV 4.6 dnn/objdetect), the app and the host CLI. Built only
# when CloisterDeps found OpenCV's modules, libjpeg and libpng (scripts/setup installs them).
if(CLOISTER_OPENCV_FOUND)
  set(objdet_dir ${CMAKE_CURRENT_LIST_DIR})
  cloister_library(NAME objdet_codec
    SOURCES ${objdet_dir}/src/image_codec.cc ${objdet_dir}/src/batch.cc
    DEPS cloister::common JPEG::JPEG PNG::PNG)
  cloister_library(NAME objdet
    SOURCES ${objdet_dir}/src/detector.cc ${objdet_dir}/src/pipeline.cc
    DEPS cloister::objdet_codec cloister_opencv nlohmann_json::nlohmann_json)
  cloister_executable(NAME object-detection-app
    SOURCES ${objdet_dir}/app/object_detection_app.cc
    DEPS cloister::example_app_main cloister::objdet cloister::formats cloister::common)
  set_target_properties(object-detection-app PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/object-detection/app)
  cloister_executable(NAME object-detect
    SOURCES ${objdet_dir}/src/object_detect_main.cc
    DEPS cloister::objdet cloister::common)
  set_target_properties(object-detect PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/object-detection)
endif()
