# The journey's in-enclave work: ESDK decryption, bid parsing + auction, receipt digesting, for
# 2, 10 and 100 parties x 10,000 bids, next to AES-256-GCM alone over the same bytes.
cloister_executable(NAME journey_bench
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/journey_bench.cc
  DEPS cloister::enclave_core benchmark::benchmark)
