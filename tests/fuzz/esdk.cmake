cloister_fuzz(NAME esdk SOURCE ${CMAKE_CURRENT_LIST_DIR}/esdk_fuzz.cc DEPS cloister::formats)
