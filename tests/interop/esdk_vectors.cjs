// Makes AWS Encryption SDK messages with the unmodified @aws-crypto/client-node, for
// tests/enclave/esdk_interop_test.cc (committed outputs in tests/enclave/testdata/esdk/).
// A raw AES keyring stands in for KMS here: the message format (header, commitment, frames,
// ECDSA footer) is the same; the KMS keyring interop runs against the KMS emulator.
//
//   node tests/interop/esdk_vectors.cjs OUT_DIR   (with @aws-crypto/client-node installed)
'use strict'
const fs = require('fs')
const path = require('path')
const {
  RawAesKeyringNode, RawAesWrappingSuiteIdentifier, buildClient, CommitmentPolicy,
  AlgorithmSuiteIdentifier,
} = require('@aws-crypto/client-node')

async function main () {
  const out = process.argv[2]
  const { encrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const keyring = new RawAesKeyringNode({
    keyName: 'cloister-test-key',
    keyNamespace: 'cloister-test',
    unencryptedMasterKey: Buffer.alloc(32, 0x21),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  })
  const encryptionContext = { 'cloister:computation': 'auction-1', 'cloister:party': 'buyer1' }
  let bids = ''
  for (let i = 0; i < 40; i++) bids += `lot-${i},${1000 + i * 7}\n`
  fs.writeFileSync(path.join(out, 'bids.txt'), bids)
  const cases = [
    ['node_0578_default.bin', {}],
    ['node_0578_frame64.bin', { frameLength: 64 }],
    ['node_0478_frame64.bin',
      { frameLength: 64, suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY }],
  ]
  for (const [name, opts] of cases) {
    const { result } = await encrypt(keyring, bids, { encryptionContext, ...opts })
    fs.writeFileSync(path.join(out, name), result)
  }
}
main().catch((e) => { console.error(e); process.exit(1) })
