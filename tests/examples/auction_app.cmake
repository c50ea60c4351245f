# examples/sealed-bid-auction/app/auction_app: the auction as an app, run on the host in the
# docs/apps.md layout; its outcome must equal the built-in auction's for the same bids.
cloister_test(NAME auction_app_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/auction_app_test.cc
  DEPS cloister::enclave_core cloister::formats cloister::test_support LABELS unit)
add_dependencies(auction_app_test auction_app)
