cloister_fuzz(NAME esdk SOURCE esdk_fuzz.cc DEPS cloister::formats)
