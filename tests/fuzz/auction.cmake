cloister_fuzz(NAME auction_bids SOURCE ${CMAKE_CURRENT_LIST_DIR}/auction_bids_fuzz.cc DEPS cloister::enclave_core)
