# examples/object-detection (built when OpenCV, libjpeg and libpng are found): the codec and
# batch format's failing-case tables, and the CLI and the app run on the host in the
# docs/apps.md layout against the reference detections (object_detection_reference.json).
# objdet_test_support (images made and broken on purpose; the app run in the layout) is also
# used by tests/adversarial/objdet_hostile_test.cc.
if(TARGET object-detection-app)
  add_library(objdet_test_support STATIC ${CMAKE_CURRENT_LIST_DIR}/objdet_images.cc
              ${CMAKE_CURRENT_LIST_DIR}/objdet_app_run.cc)
  target_include_directories(objdet_test_support PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(objdet_test_support PRIVATE ${CLOISTER_WARNINGS})
  target_compile_definitions(objdet_test_support PRIVATE
      CLOISTER_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(objdet_test_support PUBLIC cloister::objdet_codec cloister::test_support
                        GTest::gtest JPEG::JPEG z)
  cloister_test(NAME objdet_codec_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/objdet_codec_test.cc
    DEPS objdet_test_support cloister::objdet_codec LABELS unit)
  cloister_test(NAME object_detection_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/object_detection_test.cc
    DEPS objdet_test_support cloister::objdet_codec cloister::common cloister::test_support
    LABELS integration)
  add_dependencies(object_detection_test object-detection-app object-detect cloister-enclave)
  # The app inside a real enclave (objdet_enclave_test.cc).
  cloister_test(NAME objdet_enclave_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/objdet_enclave_test.cc
    DEPS objdet_test_support cloister::common cloister::kms_client cloister::test_support
    LABELS integration)
  add_dependencies(objdet_enclave_test object-detection-app object-detect cloister
                   cloister-kms cloister-proxy cloister-parent cloister-enclave)
endif()
