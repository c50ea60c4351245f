// Decrypts an AWS Encryption SDK message made by Cloister (enclave/esdk.h) with the unmodified
// @aws-crypto/client-node and the same raw AES keyring as esdk_vectors.cjs; prints
// {"plaintext_hex", "encryptionContext", "suiteId"} on stdout. Used by
// tests/enclave/esdk_node_decrypt_test.cc.
//
//   node tests/interop/esdk_decrypt.cjs MESSAGE_FILE
'use strict'
const fs = require('fs')
const {
  RawAesKeyringNode, RawAesWrappingSuiteIdentifier, buildClient, CommitmentPolicy,
} = require('@aws-crypto/client-node')

async function main () {
  const { decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const keyring = new RawAesKeyringNode({
    keyName: 'cloister-test-key',
    keyNamespace: 'cloister-test',
    unencryptedMasterKey: Buffer.alloc(32, 0x21),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  })
  const { plaintext, messageHeader } = await decrypt(keyring, fs.readFileSync(process.argv[2]))
  process.stdout.write(JSON.stringify({
    plaintext_hex: plaintext.toString('hex'),
    encryptionContext: messageHeader.encryptionContext,
    suiteId: messageHeader.suiteId,
  }))
}
main().catch((e) => { console.error(e.message); process.exit(1) })
