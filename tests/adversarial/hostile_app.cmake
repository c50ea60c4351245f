# A hostile app in a real run: attacks refused, limits enforced, private outputs only for their
# reader; see hostile_app_test.cc.
cloister_test(NAME hostile_app_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/hostile_app_test.cc
  DEPS cloister::kms_client cloister::test_support LABELS adversarial)
target_compile_definitions(hostile_app_test PRIVATE CLOISTER_TEST_CC="${CMAKE_C_COMPILER}")
add_dependencies(hostile_app_test cloister cloister-kms cloister-proxy cloister-parent cloister-enclave)
