#!/usr/bin/env bash
# Reproducibility checks for enclave images (docs/eif.md "Reproducible builds").
#   reproducible_build.sh image   SRC BUILD  - the same runtime and app, packed from two copies
#       of the app at different paths, with different file mtimes and umask: same bytes, PCRs.
#   reproducible_build.sh runtime SRC BUILD  - additionally builds cloister-enclave in a fresh
#       build directory (ccache off, so nothing is reused) and packs the same app: same bytes.
set -euo pipefail
mode="$1" src="$2" build="$3"
work="$(mktemp -d /tmp/cloister-repro.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cli="$build/cli/cloister"

mkdir -p "$work/a/deep/path" "$work/b"
cp -r "$src/examples/hello" "$work/a/deep/path/app"
cp -r "$src/examples/hello" "$work/b/app"
touch -d '2001-02-03 04:05:06' "$work/b/app/"*
(cd "$work/a" && umask 077 && "$cli" build-enclave --manifest deep/path/app/manifest.json \
   --app-dir deep/path/app --runtime "$build/enclave/cloister-enclave" --output-file one.eif \
   > one.json)
(cd / && umask 022 && "$cli" build-enclave --manifest "$work/b/app/manifest.json" \
   --app-dir "$work/b/app" --runtime "$build/enclave/cloister-enclave" \
   --output-file "$work/b/two.eif" > "$work/b/two.json")
cmp "$work/a/one.eif" "$work/b/two.eif"
cmp "$work/a/one.json" "$work/b/two.json"
grep -q '"PCR0"' "$work/a/one.json"
# SOURCE_DATE_EPOCH is the only time that may enter the image.
SOURCE_DATE_EPOCH=1700000000 "$cli" build-enclave --manifest "$work/b/app/manifest.json" \
  --app-dir "$work/b/app" --runtime "$build/enclave/cloister-enclave" \
  --output-file "$work/b/epoch.eif" > /dev/null
if cmp -s "$work/b/epoch.eif" "$work/b/two.eif"; then
  echo "SOURCE_DATE_EPOCH did not change the image" >&2; exit 1
fi
echo "image: identical bytes and PCRs from two paths"

# An app with Debian packages and an ELF closure (docs/apps.md "Building an image with an app"),
# packed from two copies in two temporary directories: the same PCR0-2, and the metadata names
# each package's version. (The isolation probe stands in for a runtime that accepts any
# manifest.)
probe="$build/tests/isolation-probe"
for side in c d; do
  mkdir -p "$work/$side/app"
  printf '#!/usr/bin/python3\nimport csv, json, statistics\nprint(json.dumps(1))\n' \
    > "$work/$side/app/survey.py"
  chmod 755 "$work/$side/app/survey.py"
  cp /usr/bin/xz "$work/$side/app/xz"
  ln -s survey.py "$work/$side/app/run"
  cat > "$work/$side/manifest.json" <<'JSON'
{"computation": "survey", "app": {"command": "run", "time_limit_seconds": 10,
 "packages": ["python3-minimal", "python3.11-minimal", "libpython3.11-minimal",
              "libpython3.11-stdlib"]}}
JSON
done
touch -d '2001-02-03 04:05:06' "$work/d/app/"*
(cd "$work/c" && umask 077 && "$cli" build-enclave --manifest manifest.json --app-dir app \
   --runtime "$probe" --output-file c.eif > c.json)
(cd / && umask 022 && "$cli" build-enclave --manifest "$work/d/manifest.json" \
   --app-dir "$work/d/app" --runtime "$probe" --output-file "$work/d/d.eif" > "$work/d/d.json")
for pcr in PCR0 PCR1 PCR2; do
  a="$(jq -r ".Measurements.$pcr" "$work/c/c.json")" b="$(jq -r ".Measurements.$pcr" "$work/d/d.json")"
  [[ "$a" =~ ^[0-9a-f]{96}$ && "$a" == "$b" ]] || { echo "$pcr differs: $a $b" >&2; exit 1; }
done
cmp "$work/c/c.eif" "$work/d/d.eif"
"$cli" describe-eif --eif-path "$work/c/c.eif" > "$work/c/describe.json"
version="$(dpkg-query -W -f='${Version}' libpython3.11-stdlib)"
jq -e --arg v "$version" '.Metadata.CustomMetadata.App.Packages
    | map(select(.Name == "libpython3.11-stdlib" and .Version == $v)) | length == 1' \
  "$work/c/describe.json" > /dev/null
jq -e '.Metadata.CustomMetadata.App.Libraries
    | map(select(.Path == "/lib/x86_64-linux-gnu/liblzma.so.5" and .Package == "liblzma5:amd64"))
    | length == 1' "$work/c/describe.json" > /dev/null
echo "app image: identical PCR0-2 and bytes from two directories ($(stat -c %s "$work/c/c.eif") bytes)"

if [[ "$mode" == runtime ]]; then
  if [[ "${CLOISTER_SLOW_TESTS:-0}" != 1 ]]; then
    echo "skipped: set CLOISTER_SLOW_TESTS=1 to rebuild the runtime in a second directory"
    exit 77
  fi
  other="$work/build2"
  CCACHE_DISABLE=1 cmake -S "$src" -B "$other" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCLOISTER_BUILD_TESTS=OFF -DCLOISTER_BUILD_BENCH=OFF -DCLOISTER_FUZZ_SANITIZE=OFF > /dev/null
  CCACHE_DISABLE=1 cmake --build "$other" -j2 --target cloister-enclave > /dev/null
  cmp "$other/enclave/cloister-enclave" "$build/enclave/cloister-enclave"
  "$cli" build-enclave --manifest "$work/b/app/manifest.json" --app-dir "$work/b/app" \
    --runtime "$other/enclave/cloister-enclave" --output-file "$work/b/three.eif" \
    > "$work/b/three.json"
  cmp "$work/b/three.eif" "$work/b/two.eif"
  cmp "$work/b/three.json" "$work/b/two.json"
  echo "runtime: identical cloister-enclave, image and PCRs from a second build directory"
fi
