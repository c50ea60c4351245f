# examples/object-detection's app attacked by its parties (built when OpenCV, libjpeg and libpng
# are found): hostile images fail alone, a hostile manifest, input or model fails the run with
# the reason; see objdet_hostile_test.cc. The helpers are tests/examples/objdet_app_run.h.
if(TARGET object-detection-app)
  cloister_test(NAME adversarial_objdet_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/objdet_hostile_test.cc
    DEPS objdet_test_support cloister::objdet_codec cloister::common cloister::test_support
    LABELS adversarial)
  add_dependencies(adversarial_objdet_test object-detection-app object-detect)
endif()
