# The dependency rule of DESIGN.md, checked on the sources (label unit), and a fixture proving
# the check fails when host code includes enclave/.
add_test(NAME deps.include_rule
  COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR} -P ${PROJECT_SOURCE_DIR}/cmake/check_includes.cmake)
add_test(NAME deps.include_rule_catches_violations
  COMMAND ${CMAKE_COMMAND} -DROOT=${CMAKE_CURRENT_LIST_DIR}/violation -P ${PROJECT_SOURCE_DIR}/cmake/check_includes.cmake)
set_tests_properties(deps.include_rule deps.include_rule_catches_violations PROPERTIES LABELS unit)
set_tests_properties(deps.include_rule_catches_violations PROPERTIES
  PASS_REGULAR_EXPRESSION "cli/bad.h includes enclave/computation_run.h")
