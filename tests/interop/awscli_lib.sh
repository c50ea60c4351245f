# shellcheck shell=bash
# Shared by the AWS CLI interop scripts (awscli_test.sh, awscli_paper_cuts_test.sh); sourced, not
# run. Starts an HTTPS cloister-kms on port 0 with a temporary data dir and gives the AWS CLI v2
# a clean environment that trusts the server's CA the way AWS tools do (--ca-bundle or
# AWS_CA_BUNDLE) with --endpoint-url. The caller sets `set -euo pipefail`.
#
# After awscli_init AWS_CLI: $aws_bin, $work (removed on exit). After start_kms KMS_BIN CONFIG:
# $endpoint, $ca, and the server is stopped on exit.

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

awscli_init() {
  aws_bin="$1"
  local version
  version="$("$aws_bin" --version 2>&1)"
  [[ "$version" == aws-cli/2.* ]] || fail "$aws_bin is not the AWS CLI v2: $version"
  echo "using $version"
  work="$(mktemp -d "${TMPDIR:-/tmp}/cloister-awscli-XXXXXX")"
  kms_pid=""
  trap awscli_cleanup EXIT

  # A clean AWS environment: no profile, no metadata service, one attempt, no pager, no CA
  # bundle from the machine's environment (each command passes the server's CA itself).
  export AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials"
  export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_MAX_ATTEMPTS=1
  export AWS_RETRY_MODE=standard AWS_PAGER="" AWS_CLI_AUTO_PROMPT=off
  unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_CA_BUNDLE \
    AWS_ENDPOINT_URL 2>/dev/null || true
  touch "$AWS_CONFIG_FILE" "$AWS_SHARED_CREDENTIALS_FILE"
}

awscli_cleanup() {
  if [[ -n "$kms_pid" ]]; then
    kill "$kms_pid" 2>/dev/null || true
    wait "$kms_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}

# Starts cloister-kms ($1) with the config file $2 and reads its endpoint and CA bundle.
start_kms() {
  local kms_bin="$1" config="$2" line
  chmod 600 "$config"
  "$kms_bin" --listen 127.0.0.1:0 --data-dir "$work/data" --config "$config" \
    > "$work/kms.out" 2> "$work/kms.log" &
  kms_pid=$!
  for _ in $(seq 200); do
    [[ -s "$work/kms.out" ]] && break
    kill -0 "$kms_pid" 2>/dev/null || fail "cloister-kms exited: $(cat "$work/kms.log")"
    sleep 0.1
  done
  line="$(head -n1 "$work/kms.out")"
  endpoint="$(json_field "$line" endpoint)"
  ca="$(json_field "$line" ca_bundle)"
  [[ "$endpoint" == https://127.0.0.1:* ]] || fail "endpoint is not https: $line"
  [[ -f "$ca" ]] || fail "no CA bundle at $ca"
  pass "cloister-kms at $endpoint, CA $ca"
}

# Prints member $2 of the JSON object $1.
json_field() {
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# `aws kms` against the server: CA by flag (kms) or by environment (kms_env).
kms() { "$aws_bin" kms --endpoint-url "$endpoint" --ca-bundle "$ca" "$@"; }
kms_env() { AWS_CA_BUNDLE="$ca" "$aws_bin" kms --endpoint-url "$endpoint" "$@"; }

# Runs a command that must fail with output containing `$1`; the rest is the command.
expect_error() {
  local want="$1"; shift
  local out rc=0
  out="$("$@" 2>&1)" || rc=$?
  [[ $rc -ne 0 ]] || fail "expected $want, the command succeeded: $*"
  [[ "$out" == *"$want"* ]] || fail "expected $want from: $* -- got: $out"
}

# Runs an AWS CLI command that must fail as the CLI reports a service error: exit status 254 and
# "An error occurred (CODE) when calling the OP operation: MESSAGE" on stderr, with CODE = $1
# and OP = $2. Leaves the whole output in $aws_error and MESSAGE in $aws_message. An error the
# CLI retried shows " (reached max retries: N)" after "operation": expected only when the caller
# sets $aws_retry_info to that text.
aws_retry_info=""
expect_aws_error() {
  local code="$1" op="$2"; shift 2
  local rc=0 prefix
  aws_error="$("$@" 2>&1)" || rc=$?
  [[ $rc -eq 254 ]] || fail "expected $code (exit 254) from $op, got exit $rc: $aws_error"
  prefix="An error occurred ($code) when calling the $op operation$aws_retry_info: "
  [[ "$aws_error" == *"$prefix"* ]] \
    || fail "expected '$prefix...' from: $* -- got: $aws_error"
  aws_message="${aws_error#*"$prefix"}"
  echo "  aws: $prefix$aws_message"
}
