cloister_fuzz(NAME frames SOURCE frames_fuzz.cc DEPS cloister::formats)
