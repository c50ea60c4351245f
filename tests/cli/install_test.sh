#!/usr/bin/env bash
# The install rules (README "On PATH"): `cmake --install` into a temporary prefix puts the four
# commands in PREFIX/bin and the enclave runtime in PREFIX/lib/cloister, where the installed
# `cloister build-enclave` finds it without --runtime; the image it builds from examples/hello
# has the same PCRs and bytes as the build tree's. Then, with the installed runtime removed, the
# installed command fails with a clear reason instead of finding another one.
#
#   install_test.sh CMAKE BUILD_DIR SOURCE_DIR
set -euo pipefail
cmake_cmd="$1" build="$2" src="$3"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$cmake_cmd" --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" ||
  fail "cmake --install: $(cat "$tmp/install.log")"
for c in cloister cloister-parent cloister-proxy cloister-kms; do
  [[ -x "$tmp/prefix/bin/$c" ]] || fail "$c not installed in bin/"
  "$tmp/prefix/bin/$c" --help > /dev/null || fail "$c --help failed"
done
[[ -x "$tmp/prefix/lib/cloister/cloister-enclave" ]] || fail "runtime not in lib/cloister/"
[[ ! -e "$tmp/prefix/bin/cloister-enclave" ]] || fail "the runtime is not a command"
cmp "$build/enclave/cloister-enclave" "$tmp/prefix/lib/cloister/cloister-enclave" ||
  fail "the installed runtime differs from the built one"

# On PATH, from a directory outside the build tree, nothing pointing at the build.
run_installed() {
  (cd "$tmp" && env -u CLOISTER_ENCLAVE_RUNTIME PATH="$tmp/prefix/bin:/usr/bin:/bin" \
    cloister build-enclave --manifest "$src/examples/hello/manifest.json" \
    --app-dir "$src/examples/hello" --output-file "$1")
}
run_installed "$tmp/installed.eif" > "$tmp/installed.json" 2> "$tmp/installed.err" ||
  fail "installed build-enclave: $(cat "$tmp/installed.err")"
env -u CLOISTER_ENCLAVE_RUNTIME "$build/cli/cloister" build-enclave \
  --manifest "$src/examples/hello/manifest.json" --app-dir "$src/examples/hello" \
  --output-file "$tmp/build.eif" > "$tmp/build.json" 2> "$tmp/build.err" ||
  fail "build-tree build-enclave: $(cat "$tmp/build.err")"
grep -q '"PCR0": "[0-9a-f]\{96\}"' "$tmp/installed.json" || fail "no PCR0: $(cat "$tmp/installed.json")"
diff "$tmp/build.json" "$tmp/installed.json" || fail "the installed tree measures other PCRs"
cmp "$tmp/build.eif" "$tmp/installed.eif" || fail "the installed tree builds other bytes"

rm "$tmp/prefix/lib/cloister/cloister-enclave"
if run_installed "$tmp/none.eif" > "$tmp/none.json" 2> "$tmp/none.err"; then
  fail "build-enclave succeeded without an installed runtime"
fi
grep -q "cloister-enclave not found" "$tmp/none.json" "$tmp/none.err" ||
  fail "no clear reason: $(cat "$tmp/none.json" "$tmp/none.err")"
[[ ! -e "$tmp/none.eif" ]] || fail "an image was written without a runtime"
echo "installed tree: same PCRs as the build tree ($(grep -o '"PCR0": "[0-9a-f]\{16\}' "$tmp/installed.json")...)"
