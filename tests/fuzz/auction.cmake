cloister_fuzz(NAME auction_bids SOURCE auction_bids_fuzz.cc DEPS cloister::enclave_core)
