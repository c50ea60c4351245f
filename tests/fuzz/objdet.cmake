# examples/object-detection: its image decoder and its batch format (built when OpenCV, libjpeg
# and libpng are found; examples/object-detection/objdet.cmake).
if(TARGET cloister_objdet_codec)
  cloister_fuzz(NAME objdet_image SOURCE ${CMAKE_CURRENT_LIST_DIR}/objdet_image_fuzz.cc
                DEPS cloister::objdet_codec)
  cloister_fuzz(NAME objdet_batch SOURCE ${CMAKE_CURRENT_LIST_DIR}/objdet_batch_fuzz.cc
                DEPS cloister::objdet_codec)
endif()
