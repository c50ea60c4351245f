// @aws-crypto/client-node (the AWS Encryption SDK) with a KMS keyring pointed at cloister-kms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KMS, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  buildClient, CommitmentPolicy, KmsKeyringNode, getClient,
} from '@aws-crypto/client-node';
import { startKms, credentials, REGION, OWNER } from './kms_server.mjs';

let kms;
before(async () => { kms = await startKms(); });
after(async () => { await kms?.stop(); });

test('encrypts and decrypts a message through a KMS keyring', async () => {
  const admin = new KMSClient({ region: REGION, endpoint: kms.endpoint,
    credentials: credentials(OWNER), ...kms.tls });
  const { KeyMetadata: key } = await admin.send(new CreateKeyCommand({}));

  const clientProvider = getClient(KMS, {
    endpoint: kms.endpoint, credentials: credentials(OWNER), ...kms.tls,
  });
  const keyring = new KmsKeyringNode({ generatorKeyId: key.Arn, clientProvider });
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const context = { computation: 'auction-1', party: 'buyer1' };
  const plaintext = Buffer.from('my sealed bid is 4200');

  const { result } = await encrypt(keyring, plaintext, { encryptionContext: context });
  assert.ok(result.length > plaintext.length);
  const { plaintext: back, messageHeader } = await decrypt(keyring, result);
  assert.equal(back.toString(), plaintext.toString());
  assert.equal(messageHeader.encryptionContext.party, 'buyer1');
  assert.equal(messageHeader.encryptedDataKeys[0].providerInfo, key.Arn);
});
