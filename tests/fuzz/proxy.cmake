# cloister-proxy: the allowlist parser (corpus in corpus/allowlist/).
cloister_fuzz(NAME allowlist SOURCE ${CMAKE_CURRENT_LIST_DIR}/allowlist_fuzz.cc DEPS cloister::proxy)
