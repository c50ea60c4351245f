# examples/salary-survey: the app run directly on the host in the docs/apps.md layout (figures,
# k-suppression, private outputs, failing inputs and manifests, determinism). Needs Debian's
# /usr/bin/python3.11, the interpreter the app names (scripts/packages.txt).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME examples.salary_survey
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/salary_survey_test.py
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(examples.salary_survey PROPERTIES LABELS unit TIMEOUT 120)
endif()
