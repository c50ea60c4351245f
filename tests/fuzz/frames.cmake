cloister_fuzz(NAME frames SOURCE ${CMAKE_CURRENT_LIST_DIR}/frames_fuzz.cc DEPS cloister::formats)
