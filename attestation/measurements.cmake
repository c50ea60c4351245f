# Measurements files (nitro-cli / cloister build-enclave JSON): the strict parser parties and
# auditors pin PCRs from. Depends on common only.
cloister_library(NAME measurements
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/measurements.cc
  DEPS cloister::common)
