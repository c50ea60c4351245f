# The NSM request/response decoders (monitor and enclave sides of the emulated /dev/nsm).
cloister_fuzz(NAME nsm SOURCE ${CMAKE_CURRENT_LIST_DIR}/nsm_fuzz.cc DEPS cloister::formats)
