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
# The AWS CLI v2 (Debian's awscli, in scripts/packages.txt) against HTTPS cloister-kms. Debian
# installs it as /usr/bin/aws: preferred over another `aws` earlier on PATH (a pip AWS CLI v1).
find_program(CLOISTER_AWS_CLI aws PATHS /usr/bin NO_DEFAULT_PATH)
find_program(CLOISTER_AWS_CLI aws)
if(CLOISTER_AWS_CLI)
  add_test(NAME interop.awscli
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/awscli_test.sh $<TARGET_FILE:cloister-kms>
                   ${CLOISTER_AWS_CLI})
  # About 25 CLI runs; each starts a Python interpreter (~1 s, several on a busy machine).
  set_tests_properties(interop.awscli PROPERTIES LABELS interop TIMEOUT 300)
  # Issue 15's cases (clock skew, tags, 413, role sessions, the bidding sample taken literally).
  # Debian's faketime (scripts/packages.txt) moves the CLI's clock; without it the script fails
  # saying what to install.
  find_program(CLOISTER_FAKETIME faketime)
  add_test(NAME interop.awscli_paper_cuts
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/awscli_paper_cuts_test.sh $<TARGET_FILE:cloister-kms>
                   ${CLOISTER_AWS_CLI} $<TARGET_FILE:cloister> ${CLOISTER_FAKETIME})
  # About 30 CLI runs: ~35 s near idle.
  set_tests_properties(interop.awscli_paper_cuts PROPERTIES LABELS interop TIMEOUT 300)
else()
  # Not skipped silently: without the AWS CLI the test fails, saying what to install.
  foreach(t awscli awscli_paper_cuts)
    add_test(NAME interop.${t} COMMAND sh -c
             "echo 'awscli is not installed: run scripts/setup (Debian package awscli)' >&2; exit 1")
    set_tests_properties(interop.${t} PROPERTIES LABELS interop)
  endforeach()
endif()
