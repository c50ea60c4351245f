#!/usr/bin/env bash
# Interop: the AWS CLI v2 (Debian's `awscli`) against an HTTPS cloister-kms through the cases of
# issue 15 ("cloister-kms against the AWS CLI v2"), asserting what a user of the CLI sees:
#   1. a request signed with a clock 10 minutes ahead gets InvalidSignatureException "Signature
#      not yet current: X is still later than Y (Z + 5 min.)", one 10 minutes behind "Signature
#      expired: X is now earlier than Y (Z - 5 min.)" (the CLI's clock is moved with Debian's
#      `faketime`; the server keeps the real one);
#   2. create-key --tags, list-resource-tags, tag-resource, untag-resource, and the errors for a
#      reserved `aws:` tag key and for more than 50 tags on a key;
#   3. an oversized request (encrypt of a 600 KB plaintext) gets RequestEntityTooLargeException
#      naming the size limit;
#   4. operators as roles: a policy naming arn:aws:iam::A:role/R lets a session of that role
#      (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN) decrypt; a policy naming only
#      another session of it does not;
#   5. AWS's bidding sample taken literally: `aws kms encrypt --output text --query
#      CiphertextBlob` gives base64 text, which `cloister party decrypt` refuses with the hint to
#      decode it, and which decrypts once decoded; a JSON bid in the sample's shape
#      (docs/auction.md) under the context cloister:computation/party/session decrypts with the
#      same context only.
# About 30 AWS CLI runs (~1 s each on an idle machine).
#
# Usage: awscli_paper_cuts_test.sh CLOISTER_KMS_BIN AWS_CLI CLOISTER_BIN FAKETIME.
# Exits non-zero at the first failed case.
set -euo pipefail
kms_bin="$1"
aws_bin="$2"
cloister_bin="$3"
faketime_bin="$4"

# shellcheck source=awscli_lib.sh
source "$(dirname "$0")/awscli_lib.sh"
[[ -x "$faketime_bin" ]] \
  || fail "faketime is not installed: run scripts/setup (Debian package faketime)"
[[ -x "$cloister_bin" ]] || fail "no cloister binary at $cloister_bin"
awscli_init "$aws_bin"
# The CLI's own retry settings, as a user has them (v2: standard mode, 3 attempts): an error
# is then shown as users see it, and one the CLI retried would show "(reached max retries: 2)"
# and fail expect_aws_error.
unset AWS_MAX_ATTEMPTS AWS_RETRY_MODE

owner_key=AKIAAWSCLIOWNER00002
owner_secret='awscli/Owner+Secret0000000000000000000002'
role_key=AKIAAWSCLIOPERATOR01
role_secret='awscli/Operator+Role+Secret0000000000001'
run1_key=ASIAAWSCLIOPRUN00001
run1_secret='awscli/Operator+Run1+Secret0000000000001'
run1_token='IQoJb3JpZ2luX2VjEIn/run1+session+token/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=='
run2_key=ASIAAWSCLIOPRUN00002
run2_secret='awscli/Operator+Run2+Secret0000000000002'
run2_token='IQoJb3JpZ2luX2VjEIn/run2+session+token/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=='
owner_arn=arn:aws:iam::111122223333:user/owner
role_arn=arn:aws:iam::444455556666:role/operator
run1_arn=arn:aws:sts::444455556666:assumed-role/operator/run-1
run2_arn=arn:aws:sts::444455556666:assumed-role/operator/run-2
cat > "$work/kms.yaml" <<EOF
region: us-east-1
principals:
  - arn: $owner_arn
    access_key_id: $owner_key
    secret_access_key: "$owner_secret"
  - arn: $role_arn
    access_key_id: $role_key
    secret_access_key: "$role_secret"
  - arn: $run1_arn
    access_key_id: $run1_key
    secret_access_key: "$run1_secret"
    session_token: "$run1_token"
  - arn: $run2_arn
    access_key_id: $run2_key
    secret_access_key: "$run2_secret"
    session_token: "$run2_token"
EOF
start_kms "$kms_bin" "$work/kms.yaml"
as_owner() { AWS_ACCESS_KEY_ID=$owner_key AWS_SECRET_ACCESS_KEY=$owner_secret "$@"; }
as_role() { AWS_ACCESS_KEY_ID=$role_key AWS_SECRET_ACCESS_KEY=$role_secret "$@"; }
as_run1() {
  AWS_ACCESS_KEY_ID=$run1_key AWS_SECRET_ACCESS_KEY=$run1_secret AWS_SESSION_TOKEN=$run1_token "$@"
}
as_run2() {
  AWS_ACCESS_KEY_ID=$run2_key AWS_SECRET_ACCESS_KEY=$run2_secret AWS_SESSION_TOKEN=$run2_token "$@"
}

key_id="$(as_owner kms create-key --description "paper cuts" --query KeyMetadata.KeyId \
  --output text)"
[[ "$key_id" =~ ^[0-9a-f-]{36}$ ]] || fail "create-key printed $key_id"

# 1. Clock skew. faketime moves the AWS CLI's clock only (its SigV4 X-Amz-Date); the TLS
# certificate is valid from an hour before it was made, so the handshake still succeeds.
# Checks that $aws_message is "<prefix>: X <relation> Y (Z <sign> 5 min.)" with X the CLI's
# date ($want_skew seconds from Z, give or take a minute for a slow machine), Z the server's
# clock (within two minutes of this script's) and Y = Z <sign> 5 minutes.
check_skew_message() {
  local prefix="$1" relation="$2" sign="$3" want_skew="$4"
  local d='([0-9]{8}T[0-9]{6}Z)'
  local re="^$prefix: $d $relation $d \\($d \\$sign 5 min\\.\\)\$"
  [[ "$aws_message" =~ $re ]] \
    || fail "the message is not '$prefix: X $relation Y (Z $sign 5 min.)': $aws_message"
  python3 - "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" "$sign" "$want_skew" \
    "$(date -u +%s)" <<'PY' || fail "the dates in the message do not add up: $aws_message"
import calendar, sys, time
x, y, z = (calendar.timegm(time.strptime(v, "%Y%m%dT%H%M%SZ")) for v in sys.argv[1:4])
sign, want_skew, now = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
assert abs(z - now) <= 120, ("server clock", z, now)
assert y - z == (300 if sign == "+" else -300), ("window", y, z)
assert abs((x - z) - want_skew) <= 60, ("client date", x, z, want_skew)
PY
}
skewed() {
  local offset="$1"; shift
  FAKETIME_DONT_FAKE_MONOTONIC=1 "$faketime_bin" -f "$offset" "$aws_bin" kms \
    --endpoint-url "$endpoint" --ca-bundle "$ca" "$@"
}
[[ "$(FAKETIME_DONT_FAKE_MONOTONIC=1 "$faketime_bin" -f +10m date -u +%s)" -ge \
   "$(( $(date -u +%s) + 590 ))" ]] || fail "faketime did not move the clock 10 minutes ahead"
expect_aws_error InvalidSignatureException DescribeKey as_owner skewed +10m describe-key \
  --key-id "$key_id"
check_skew_message "Signature not yet current" "is still later than" "+" 600
expect_aws_error InvalidSignatureException DescribeKey as_owner skewed -10m describe-key \
  --key-id "$key_id"
check_skew_message "Signature expired" "is now earlier than" "-" -600
# Within the window (4 minutes ahead) the same command works.
state="$(as_owner skewed +4m describe-key --key-id "$key_id" --query KeyMetadata.KeyState \
  --output text)"
[[ "$state" == Enabled ]] || fail "a request 4 minutes ahead: KeyState $state"
pass "clock skew: not yet current (+10 min), expired (-10 min), accepted (+4 min)"

# 2. Tags. Prints the key's tags as "key=value" lines, in the order the server lists them; the
# CLI follows NextMarker by itself with --page-size 1.
tags_of() {
  as_owner kms list-resource-tags --key-id "$1" --page-size 1 --output json \
    | python3 -c 'import json,sys
for t in json.load(sys.stdin)["Tags"]: print(t["TagKey"] + "=" + t["TagValue"])'
}
tagged="$(as_owner kms create-key --tags TagKey=k,TagValue=v --query KeyMetadata.KeyId \
  --output text)"
[[ "$(tags_of "$tagged")" == "k=v" ]] \
  || fail "create-key --tags: list-resource-tags gave $(tags_of "$tagged")"
as_owner kms tag-resource --key-id "$tagged" --tags TagKey=team,TagValue=blue \
  TagKey=k,TagValue=v2
[[ "$(tags_of "$tagged")" == $'k=v2\nteam=blue' ]] || fail "tag-resource: $(tags_of "$tagged")"
as_owner kms untag-resource --key-id "$tagged" --tag-keys k
[[ "$(tags_of "$tagged")" == "team=blue" ]] || fail "untag-resource: $(tags_of "$tagged")"
expect_aws_error TagException TagResource as_owner kms tag-resource --key-id "$tagged" \
  --tags TagKey=aws:owner,TagValue=x
[[ "$aws_message" == *"aws:"*reserved* ]] || fail "the reserved-prefix message: $aws_message"
expect_aws_error TagException CreateKey as_owner kms create-key --tags TagKey=AWS:team,TagValue=x
many=()
for i in $(seq -w 1 50); do many+=("TagKey=t$i,TagValue=x"); done
# The CLI takes LimitExceededException for throttling and retries it with back-off (botocore's
# standard retry mode), against AWS KMS too: one attempt here keeps the test short.
aws_retry_info=" (reached max retries: 0)"
expect_aws_error LimitExceededException TagResource as_owner env AWS_MAX_ATTEMPTS=1 \
  "$aws_bin" kms --endpoint-url "$endpoint" --ca-bundle "$ca" tag-resource --key-id "$tagged" \
  --tags "${many[@]}"
aws_retry_info=""
[[ "$aws_message" == *"at most 50 tags"* ]] || fail "the too-many-tags message: $aws_message"
[[ "$(tags_of "$tagged")" == "team=blue" ]] \
  || fail "a refused tag-resource changed the tags: $(tags_of "$tagged")"
pass "tags: create-key --tags, list-resource-tags (paged), tag-resource, untag-resource," \
  "aws: prefix, 51 tags"

# 3. An oversized request: 600 KB of plaintext is an 800 KB base64 body, over the 512 KiB limit.
head -c 600000 /dev/urandom > "$work/big"
expect_aws_error RequestEntityTooLargeException Encrypt as_owner kms encrypt --key-id "$key_id" \
  --plaintext "fileb://$work/big"
[[ "$aws_message" == *"524288 bytes"* ]] \
  || fail "the 413 message does not name the limit: $aws_message"
pass "oversized request: RequestEntityTooLargeException naming the 524288-byte limit"

# 4. Operators as roles. Key "role" names the role: its sessions may decrypt. Key "session"
# names only the session run-2: run-1 may not.
policy() {
  cat <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": "$owner_arn"},
   "Action": "kms:*", "Resource": "*"},
  {"Sid": "Operator", "Effect": "Allow", "Principal": {"AWS": "$1"},
   "Action": "kms:Decrypt", "Resource": "*"}]}
EOF
}
policy "$role_arn" > "$work/role-policy.json"
policy "$run2_arn" > "$work/session-policy.json"
printf 'for the operator' > "$work/op.plain"
for which in role session; do
  id="$(as_owner kms create-key --policy "file://$work/$which-policy.json" \
    --query KeyMetadata.KeyId --output text)"
  as_owner kms encrypt --key-id "$id" --plaintext "fileb://$work/op.plain" \
    --query CiphertextBlob --output text | base64 -d > "$work/$which.blob"
done
as_run1 kms decrypt --ciphertext-blob "fileb://$work/role.blob" --query Plaintext --output text \
  | base64 -d > "$work/op.back"
cmp -s "$work/op.plain" "$work/op.back" \
  || fail "a session of the role named in the policy did not decrypt"
as_role kms decrypt --ciphertext-blob "fileb://$work/role.blob" --query Plaintext --output text \
  | base64 -d > "$work/op.back2"
cmp -s "$work/op.plain" "$work/op.back2" || fail "the role named in the policy did not decrypt"
expect_aws_error AccessDeniedException Decrypt as_run1 kms decrypt \
  --ciphertext-blob "fileb://$work/session.blob"
[[ "$aws_message" == *"$run1_arn"* ]] || fail "AccessDenied does not name the caller: $aws_message"
as_run2 kms decrypt --ciphertext-blob "fileb://$work/session.blob" --query Plaintext \
  --output text | base64 -d > "$work/op.back3"
cmp -s "$work/op.plain" "$work/op.back3" || fail "the session named in the policy did not decrypt"
# A session's keys without its token are not a session.
expect_aws_error UnrecognizedClientException Decrypt env AWS_ACCESS_KEY_ID=$run1_key \
  AWS_SECRET_ACCESS_KEY=$run1_secret "$aws_bin" kms --endpoint-url "$endpoint" \
  --ca-bundle "$ca" decrypt --ciphertext-blob "fileb://$work/role.blob"
pass "roles: a policy naming the role lets its session decrypt; naming another session does" \
  "not; no token refused"

# 5. AWS's bidding sample, literally: a JSON bid, `aws kms encrypt --output text --query
# CiphertextBlob`, no encryption context.
printf '[{"contract": "1", "bid": "100000"}, {"contract": "2", "bid": "200000"}]' \
  > "$work/bid.json"
as_owner kms encrypt --key-id "$key_id" --plaintext "fileb://$work/bid.json" --output text \
  --query CiphertextBlob > "$work/bid.b64"
python3 -c 'import base64,sys; base64.b64decode(open(sys.argv[1]).read().strip(), validate=True)' \
  "$work/bid.b64" || fail "aws kms encrypt --output text did not print base64 text"
party_decrypt() {
  as_owner "$cloister_bin" party decrypt --kms "$endpoint" --ca-bundle "$ca" "$@"
}
rc=0
out="$(party_decrypt --in "$work/bid.b64" --out "$work/bid.out" 2>&1)" || rc=$?
[[ $rc -eq 1 ]] || fail "party decrypt of base64 text: exit $rc, want 1: $out"
[[ "$out" == *"this looks like base64 text; decode it"*"base64 -d"* ]] \
  || fail "party decrypt of base64 text gave no hint: $out"
[[ ! -e "$work/bid.out" ]] || fail "a refused party decrypt left an output file"
base64 -d "$work/bid.b64" > "$work/bid.blob"
party_decrypt --in "$work/bid.blob" --out "$work/bid.out" > "$work/bid.result"
cmp -s "$work/bid.json" "$work/bid.out" || fail "the decoded blob did not decrypt to the bid"
[[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Format"])' \
  "$work/bid.result")" == kms-ciphertext-blob ]] || fail "party decrypt: $(cat "$work/bid.result")"
pass "bidding sample: base64 text refused with the hint (exit 1), decrypted after base64 -d"

# The same JSON bid bound to the computation, the party and the enclave's session.
session="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
ctx="cloister:computation=auction-1,cloister:party=buyer1,cloister:session=$session"
as_owner kms encrypt --key-id "$key_id" --plaintext "fileb://$work/bid.json" \
  --encryption-context "$ctx" --output text --query CiphertextBlob | base64 -d \
  > "$work/bid-ctx.blob"
as_owner kms decrypt --ciphertext-blob "fileb://$work/bid-ctx.blob" --encryption-context "$ctx" \
  --query Plaintext --output text | base64 -d > "$work/bid-ctx.back"
cmp -s "$work/bid.json" "$work/bid-ctx.back" || fail "the JSON bid did not decrypt with its context"
expect_aws_error InvalidCiphertextException Decrypt as_owner kms decrypt \
  --ciphertext-blob "fileb://$work/bid-ctx.blob" \
  --encryption-context cloister:computation=auction-1,cloister:party=buyer1
pass "bidding sample: JSON bid with computation, party and session in the context; without" \
  "the session refused"

echo "all AWS CLI paper-cut cases passed"
