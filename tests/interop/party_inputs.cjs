// Makes two parties' inputs with unmodified AWS JavaScript clients against a KMS endpoint, as a
// party that does not use the Cloister CLI would (used by tests/cli/party_interop_test.cc):
//  - OUT_DIR/buyer1.esdk: @aws-crypto/client-node, KMS keyring (KmsKeyringNode, its KMS client
//    pointed at the endpoint), context {cloister:computation, cloister:party: buyer1};
//  - OUT_DIR/buyer2.blob: @aws-sdk/client-kms EncryptCommand of a small bid file with the same
//    context for buyer2 (what `aws kms encrypt` does in AWS's bidding sample).
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
//
// With SESSION (64 hex), both contexts also carry cloister:session (inputs bound to that enclave
// session, docs/session.md).
//
//   node tests/interop/party_inputs.cjs ENDPOINT KEY1_ARN KEY2_ARN COMPUTATION OUT_DIR [SESSION]
'use strict'
const fs = require('fs')
const path = require('path')
const { KMS, KMSClient, EncryptCommand } = require('@aws-sdk/client-kms')
const {
  buildClient, CommitmentPolicy, KmsKeyringNode, getClient,
} = require('@aws-crypto/client-node')

async function main () {
  const [endpoint, key1, key2, computation, outDir, session] = process.argv.slice(2)
  const bound = session ? { 'cloister:session': session } : {}
  const credentials = {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  }
  const clientProvider = getClient(KMS, { endpoint, credentials, maxAttempts: 1 })
  const keyring = new KmsKeyringNode({ generatorKeyId: key1, clientProvider })
  const { encrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const { result } = await encrypt(keyring, Buffer.from('lot-1,700\nlot-2,50\n'), {
    encryptionContext: { 'cloister:computation': computation, 'cloister:party': 'buyer1', ...bound },
  })
  fs.writeFileSync(path.join(outDir, 'buyer1.esdk'), result)

  const kms = new KMSClient({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1 })
  const { CiphertextBlob } = await kms.send(new EncryptCommand({
    KeyId: key2,
    Plaintext: Buffer.from('lot-1,900\n'),
    EncryptionContext: { 'cloister:computation': computation, 'cloister:party': 'buyer2', ...bound },
  }))
  fs.writeFileSync(path.join(outDir, 'buyer2.blob'), Buffer.from(CiphertextBlob))
  process.stdout.write(JSON.stringify({ esdk: result.length, blob: CiphertextBlob.length }))
}
main().catch((e) => { console.error(`${e.name}: ${e.message}`); process.exit(1) })
