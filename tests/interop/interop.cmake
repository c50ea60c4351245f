# Interop: unmodified AWS JavaScript clients (pinned in package-lock.json; scripts/test runs
# `npm ci` here) against a cloister-kms started on port 0 with a temporary data dir.
find_program(CLOISTER_NODE node)
if(CLOISTER_NODE)
  foreach(t kms_client esdk)
    add_test(NAME interop.${t}
             COMMAND ${CLOISTER_NODE} --test ${CMAKE_CURRENT_LIST_DIR}/${t}.test.mjs
             WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
    set_tests_properties(interop.${t} PROPERTIES LABELS interop TIMEOUT 120
        ENVIRONMENT "CLOISTER_KMS_BIN=$<TARGET_FILE:cloister-kms>")
  endforeach()
endif()
