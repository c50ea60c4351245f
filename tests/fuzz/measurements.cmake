# Measurements files (nitro-cli / build-enclave JSON) as parties and auditors read them.
cloister_fuzz(NAME measurements SOURCE ${CMAKE_CURRENT_LIST_DIR}/measurements_fuzz.cc
  DEPS cloister::measurements)
