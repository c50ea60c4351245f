# Computations as apps (bench/app_bench.py, a script): the salary survey (100 employers x 10,000
# rows) end to end with the real binaries, split into phases, and the sealed-bid auction built in
# and as an app (examples/sealed-bid-auction/app/auction_app) in the same run. This target only
# builds what the script runs; then, as root:
#   bench/app_bench.py [--build build] [--reps 3]
add_custom_target(app_bench
  COMMAND ${CMAKE_COMMAND} -E echo "run (as root): ${PROJECT_SOURCE_DIR}/bench/app_bench.py --build ${PROJECT_BINARY_DIR}"
  VERBATIM)
add_dependencies(app_bench cloister cloister-parent cloister-enclave cloister-kms cloister-proxy
                 auction_app)
