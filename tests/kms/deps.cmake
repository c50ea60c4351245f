# deps.kms_client_apart: the KMS client library does not link the server's (see
# tests/kms/deps/kms_client_apart.cmake; the configure-time check is cmake/CloisterLinkCheck.cmake).
add_test(NAME deps.kms_client_apart
  COMMAND ${CMAKE_COMMAND} -DCLOISTER_SOURCE_DIR=${PROJECT_SOURCE_DIR}
          -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/deps_kms_client_apart
          -DGENERATOR=${CMAKE_GENERATOR}
          -DLINK_TXT=${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/kms_client_tls_test.dir/link.txt
          -P ${CMAKE_CURRENT_LIST_DIR}/deps/kms_client_apart.cmake)
set_tests_properties(deps.kms_client_apart PROPERTIES LABELS unit TIMEOUT 120)
