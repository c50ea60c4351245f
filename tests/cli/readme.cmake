# The README's three journeys (auditor, operator, party), run from its marked code blocks as
# printed, with the installed commands on PATH (tests/cli/readme_journeys_test.py). Needs root
# for run-enclave: skipped (shown as skipped) otherwise.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME cli.readme_journeys
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/readme_journeys_test.py
                   ${CMAKE_COMMAND} ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(cli.readme_journeys PROPERTIES LABELS integration TIMEOUT 300
                       SKIP_RETURN_CODE 77)
endif()
