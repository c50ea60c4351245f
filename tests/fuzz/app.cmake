# The app section of a manifest and an app's outcome.json (docs/apps.md).
cloister_fuzz(NAME app_manifest SOURCE ${CMAKE_CURRENT_LIST_DIR}/app_manifest_fuzz.cc DEPS cloister::formats)
cloister_fuzz(NAME app_outcome SOURCE ${CMAKE_CURRENT_LIST_DIR}/app_outcome_fuzz.cc DEPS cloister::enclave_core)
