#!/usr/bin/env bash
# Interop: the AWS CLI v2 (Debian's `awscli`, installed by scripts/setup) against an HTTPS
# cloister-kms started on port 0 with a temporary data dir, trusting the server's CA the way AWS
# tools do (--ca-bundle and AWS_CA_BUNDLE) with --endpoint-url. Cases: create-key, describe-key,
# encrypt/decrypt with an encryption context, generate-data-key, list-keys paging, errors, and
# AWS's bidding-sample flow with the session in the context (issue 14 section 3, issue 15).
#
# The issue 15 cases (clock skew, tags, 413, role sessions, the bidding sample taken literally)
# are in awscli_paper_cuts_test.sh.
#
# Usage: awscli_test.sh CLOISTER_KMS_BIN AWS_CLI. Exits non-zero at the first failed case.
set -euo pipefail
kms_bin="$1"
aws_bin="$2"

# shellcheck source=awscli_lib.sh
source "$(dirname "$0")/awscli_lib.sh"
awscli_init "$aws_bin"

owner_key=AKIAAWSCLIOWNER00001
owner_secret='awscli/Owner+Secret0000000000000000000001'
other_key=AKIAAWSCLIOTHER00001
other_secret='awscli/Other+Secret0000000000000000000001'
cat > "$work/kms.yaml" <<EOF
region: us-east-1
principals:
  - arn: arn:aws:iam::111122223333:user/owner
    access_key_id: $owner_key
    secret_access_key: "$owner_secret"
  - arn: arn:aws:iam::444455556666:user/other
    access_key_id: $other_key
    secret_access_key: "$other_secret"
EOF
start_kms "$kms_bin" "$work/kms.yaml"
as_owner() { AWS_ACCESS_KEY_ID=$owner_key AWS_SECRET_ACCESS_KEY=$owner_secret "$@"; }
as_other() { AWS_ACCESS_KEY_ID=$other_key AWS_SECRET_ACCESS_KEY=$other_secret "$@"; }

# create-key / describe-key, CA by flag then by environment.
key_id="$(as_owner kms create-key --description "awscli interop" --query KeyMetadata.KeyId \
  --output text)"
[[ "$key_id" =~ ^[0-9a-f-]{36}$ ]] || fail "create-key printed $key_id"
state="$(as_owner kms_env describe-key --key-id "$key_id" --query KeyMetadata.KeyState \
  --output text)"
[[ "$state" == Enabled ]] || fail "describe-key: KeyState $state"
arn="$(as_owner kms describe-key --key-id "$key_id" --query KeyMetadata.Arn --output text)"
[[ "$arn" == "arn:aws:kms:us-east-1:111122223333:key/$key_id" ]] || fail "Arn $arn"
pass "create-key, describe-key (--ca-bundle and AWS_CA_BUNDLE)"

# encrypt / decrypt with an encryption context; another context fails.
printf 'confidential payload' > "$work/plain"
as_owner kms encrypt --key-id "$key_id" --plaintext "fileb://$work/plain" \
  --encryption-context purpose=interop,team=blue --query CiphertextBlob --output text \
  | base64 -d > "$work/blob"
as_owner kms decrypt --ciphertext-blob "fileb://$work/blob" \
  --encryption-context purpose=interop,team=blue --query Plaintext --output text \
  | base64 -d > "$work/back"
cmp -s "$work/plain" "$work/back" || fail "decrypt did not return the plaintext"
expect_error InvalidCiphertextException as_owner kms decrypt --ciphertext-blob \
  "fileb://$work/blob" --encryption-context purpose=interop,team=red
expect_error InvalidCiphertextException as_owner kms decrypt --ciphertext-blob \
  "fileb://$work/blob"
pass "encrypt/decrypt with an encryption context; another or none refused"

# generate-data-key: the plaintext key decrypts back from its blob.
as_owner kms generate-data-key --key-id "$key_id" --number-of-bytes 32 \
  --encryption-context purpose=datakey --output json > "$work/dk.json"
python3 - "$work/dk.json" "$work" <<'PY'
import base64, json, sys
d = json.load(open(sys.argv[1]))
pt = base64.b64decode(d["Plaintext"])
assert len(pt) == 32, len(pt)
open(sys.argv[2] + "/dk.plain", "wb").write(pt)
open(sys.argv[2] + "/dk.blob", "wb").write(base64.b64decode(d["CiphertextBlob"]))
PY
as_owner kms decrypt --ciphertext-blob "fileb://$work/dk.blob" \
  --encryption-context purpose=datakey --query Plaintext --output text \
  | base64 -d > "$work/dk.back"
cmp -s "$work/dk.plain" "$work/dk.back" || fail "the data key did not decrypt back"
pass "generate-data-key"


# list-keys paging: 3 keys, one per page; the CLI follows NextMarker by itself, and a manual
# page of 2 items hands back a NextToken.
for _ in 1 2; do as_owner kms create-key --query KeyMetadata.KeyId --output text > /dev/null; done
count="$(as_owner kms list-keys --page-size 1 --output json \
  | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Keys"]))')"
[[ "$count" == 3 ]] || fail "list-keys with --page-size 1 listed $count keys, want 3"
as_owner kms list-keys --page-size 1 --max-items 2 --output json > "$work/page.json"
token="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["Keys"])==2, d; print(d["NextToken"])' "$work/page.json")"
rest="$(as_owner kms list-keys --page-size 1 --starting-token "$token" --output json \
  | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Keys"]))')"
[[ "$rest" == 1 ]] || fail "list-keys from the NextToken listed $rest keys, want 1"
pass "list-keys paging"

# AWS's bidding sample (aws-samples nitro-enclaves bidding flow): the party encrypts its bid
# with `aws kms encrypt`, bound to the computation, the party and the enclave's session.
session="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
other_session="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
ctx="cloister:computation=auction-1,cloister:party=buyer1,cloister:session=$session"
printf 'lot-1,4200\n' > "$work/bid"
as_owner kms encrypt --key-id "$key_id" --plaintext "fileb://$work/bid" \
  --encryption-context "$ctx" --query CiphertextBlob --output text | base64 -d > "$work/bid.blob"
as_owner kms decrypt --ciphertext-blob "fileb://$work/bid.blob" --encryption-context "$ctx" \
  --query Plaintext --output text | base64 -d > "$work/bid.back"
cmp -s "$work/bid" "$work/bid.back" || fail "the bid did not decrypt with its context"
expect_error InvalidCiphertextException as_owner kms decrypt \
  --ciphertext-blob "fileb://$work/bid.blob" --encryption-context \
  "cloister:computation=auction-1,cloister:party=buyer1,cloister:session=$other_session"
pass "bidding sample: encrypt with the session in the context; another session refused"

# Errors, as the AWS CLI reports them.
expect_error NotFoundException as_owner kms describe-key \
  --key-id 11111111-2222-4333-8444-555555555555
expect_error AccessDeniedException as_other kms decrypt --ciphertext-blob "fileb://$work/blob" \
  --encryption-context purpose=interop,team=blue
expect_error InvalidSignatureException env AWS_ACCESS_KEY_ID=$owner_key \
  AWS_SECRET_ACCESS_KEY=not-the-secret "$aws_bin" kms --endpoint-url "$endpoint" \
  --ca-bundle "$ca" describe-key --key-id "$key_id"
expect_error UnrecognizedClientException env AWS_ACCESS_KEY_ID=AKIAUNKNOWN000000001 \
  AWS_SECRET_ACCESS_KEY=x "$aws_bin" kms --endpoint-url "$endpoint" --ca-bundle "$ca" \
  describe-key --key-id "$key_id"
# No CA: the server's certificate does not verify.
expect_error "SSL validation failed" as_owner "$aws_bin" kms --endpoint-url "$endpoint" \
  describe-key --key-id "$key_id"
# Plain HTTP to the HTTPS port: told to use https and a CA bundle.
expect_error "speaks HTTPS only" as_owner "$aws_bin" kms --endpoint-url "${endpoint/https/http}" \
  describe-key --key-id "$key_id"
pass "errors: NotFound, AccessDenied, InvalidSignature, UnrecognizedClient, no CA, plain HTTP"

echo "all AWS CLI cases passed"
