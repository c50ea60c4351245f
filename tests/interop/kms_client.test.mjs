// Unmodified @aws-sdk/client-kms against cloister-kms: custom endpoint, real SigV4 credentials.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  KMSClient, CreateKeyCommand, DescribeKeyCommand, GetKeyPolicyCommand, PutKeyPolicyCommand,
  ListKeysCommand, ListKeyPoliciesCommand, CreateAliasCommand, ListAliasesCommand,
  DeleteAliasCommand, EncryptCommand, DecryptCommand, ReEncryptCommand, GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand, GenerateRandomCommand, EnableKeyCommand,
  DisableKeyCommand, ScheduleKeyDeletionCommand, CancelKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { startKms, credentials, REGION, OWNER, READER, OUTSIDER } from './kms_server.mjs';

let kms;
const clientFor = (p, extra = {}) => new KMSClient({
  region: REGION, endpoint: kms.endpoint, credentials: credentials(p), maxAttempts: 1, ...kms.tls,
  ...extra,
});

before(async () => { kms = await startKms(); });
after(async () => { await kms?.stop(); });

const ownerOnlyPolicy = (sid) => JSON.stringify({
  Version: '2012-10-17',
  Statement: [{
    Sid: sid, Effect: 'Allow', Principal: { AWS: OWNER.arn }, Action: 'kms:*', Resource: '*',
  }],
});

async function rejectsWith(promise, name) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, name, `expected ${name}, got ${err.name}: ${err.message}`);
    return true;
  });
}

test('CreateKey, DescribeKey, policies, aliases, ListKeys', async () => {
  const c = clientFor(OWNER);
  const { KeyMetadata: md } = await c.send(new CreateKeyCommand({
    Policy: ownerOnlyPolicy('OwnerOnly'), Description: 'interop',
  }));
  assert.match(md.Arn, /^arn:aws:kms:us-east-1:111122223333:key\/[0-9a-f-]{36}$/);
  assert.equal(md.KeyState, 'Enabled');
  assert.equal(md.Enabled, true);
  assert.ok(md.CreationDate instanceof Date);

  const described = await c.send(new DescribeKeyCommand({ KeyId: md.KeyId }));
  assert.equal(described.KeyMetadata.Arn, md.Arn);
  assert.equal(described.KeyMetadata.Description, 'interop');

  const got = await c.send(new GetKeyPolicyCommand({ KeyId: md.Arn, PolicyName: 'default' }));
  assert.deepEqual(JSON.parse(got.Policy), JSON.parse(ownerOnlyPolicy('OwnerOnly')));
  await c.send(new PutKeyPolicyCommand({
    KeyId: md.KeyId, PolicyName: 'default', Policy: ownerOnlyPolicy('OwnerStill'),
  }));
  const got2 = await c.send(new GetKeyPolicyCommand({ KeyId: md.KeyId, PolicyName: 'default' }));
  assert.equal(JSON.parse(got2.Policy).Statement[0].Sid, 'OwnerStill');
  const names = await c.send(new ListKeyPoliciesCommand({ KeyId: md.KeyId }));
  assert.deepEqual(names.PolicyNames, ['default']);
  await rejectsWith(c.send(new PutKeyPolicyCommand({
    KeyId: md.KeyId, PolicyName: 'default', Policy: '{"Statement": ',
  })), 'MalformedPolicyDocumentException');

  await c.send(new CreateAliasCommand({ AliasName: 'alias/interop', TargetKeyId: md.KeyId }));
  await rejectsWith(c.send(new CreateAliasCommand({
    AliasName: 'alias/interop', TargetKeyId: md.KeyId,
  })), 'AlreadyExistsException');
  const aliases = await c.send(new ListAliasesCommand({}));
  const a = aliases.Aliases.find((x) => x.AliasName === 'alias/interop');
  assert.equal(a.TargetKeyId, md.KeyId);
  assert.equal(a.AliasArn, 'arn:aws:kms:us-east-1:111122223333:alias/interop');
  for (const id of ['alias/interop', a.AliasArn, md.Arn, md.KeyId]) {
    const d = await c.send(new DescribeKeyCommand({ KeyId: id }));
    assert.equal(d.KeyMetadata.KeyId, md.KeyId, id);
  }
  await c.send(new DeleteAliasCommand({ AliasName: 'alias/interop' }));
  await rejectsWith(c.send(new DescribeKeyCommand({ KeyId: 'alias/interop' })),
    'NotFoundException');

  const keys = await c.send(new ListKeysCommand({}));
  assert.ok(keys.Keys.some((k) => k.KeyArn === md.Arn));
});

test('Encrypt, Decrypt, ReEncrypt, GenerateDataKey, GenerateRandom', async () => {
  const c = clientFor(OWNER);
  const { KeyMetadata: k1 } = await c.send(new CreateKeyCommand({}));
  const { KeyMetadata: k2 } = await c.send(new CreateKeyCommand({}));
  await c.send(new CreateAliasCommand({ AliasName: 'alias/data', TargetKeyId: k1.Arn }));
  const plaintext = Buffer.from('sealed bid: 4200');
  const ctx = { computation: 'auction-1', party: 'buyer1' };

  const enc = await c.send(new EncryptCommand({
    KeyId: 'alias/data', Plaintext: plaintext, EncryptionContext: ctx,
  }));
  assert.equal(enc.KeyId, k1.Arn);
  assert.equal(enc.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');

  // Decrypt needs no KeyId; the context may come in any member order.
  const dec = await c.send(new DecryptCommand({
    CiphertextBlob: enc.CiphertextBlob,
    EncryptionContext: { party: 'buyer1', computation: 'auction-1' },
  }));
  assert.equal(Buffer.from(dec.Plaintext).toString(), plaintext.toString());
  assert.equal(dec.KeyId, k1.Arn);
  // x-amzn-RequestId, as the SDK reports it: a fresh version 4 UUID per request, as AWS's.
  const uuid4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(enc.$metadata.requestId, uuid4);
  assert.match(dec.$metadata.requestId, uuid4);
  assert.notEqual(enc.$metadata.requestId, dec.$metadata.requestId);

  await rejectsWith(c.send(new DecryptCommand({
    CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { computation: 'auction-1' },
  })), 'InvalidCiphertextException');
  await rejectsWith(c.send(new DecryptCommand({
    CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx, KeyId: k2.Arn,
  })), 'IncorrectKeyException');

  const re = await c.send(new ReEncryptCommand({
    CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ctx,
    DestinationKeyId: k2.KeyId, DestinationEncryptionContext: { v: '2' },
  }));
  assert.equal(re.KeyId, k2.Arn);
  assert.equal(re.SourceKeyId, k1.Arn);
  const dec2 = await c.send(new DecryptCommand({
    CiphertextBlob: re.CiphertextBlob, EncryptionContext: { v: '2' },
  }));
  assert.equal(Buffer.from(dec2.Plaintext).toString(), plaintext.toString());

  const dk = await c.send(new GenerateDataKeyCommand({
    KeyId: k1.Arn, KeySpec: 'AES_256', EncryptionContext: ctx,
  }));
  assert.equal(dk.Plaintext.length, 32);
  const back = await c.send(new DecryptCommand({
    CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx,
  }));
  assert.deepEqual(Buffer.from(back.Plaintext), Buffer.from(dk.Plaintext));

  const nk = await c.send(new GenerateDataKeyWithoutPlaintextCommand({
    KeyId: k1.KeyId, NumberOfBytes: 64,
  }));
  assert.equal(nk.Plaintext, undefined);
  const nkPlain = await c.send(new DecryptCommand({ CiphertextBlob: nk.CiphertextBlob }));
  assert.equal(nkPlain.Plaintext.length, 64);

  const r1 = await c.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
  const r2 = await c.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
  assert.equal(r1.Plaintext.length, 48);
  assert.notDeepEqual(Buffer.from(r1.Plaintext), Buffer.from(r2.Plaintext));
  await rejectsWith(c.send(new GenerateRandomCommand({ NumberOfBytes: 1025 })),
    'ValidationException');
});

test('key state: disabled, scheduled for deletion, cancelled', async () => {
  const c = clientFor(OWNER);
  const { KeyMetadata: k } = await c.send(new CreateKeyCommand({}));
  const enc = await c.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('x') }));
  await c.send(new DisableKeyCommand({ KeyId: k.KeyId }));
  await rejectsWith(c.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('x') })),
    'DisabledException');
  await rejectsWith(c.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob })),
    'DisabledException');
  assert.equal((await c.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata.KeyState,
    'Disabled');
  await c.send(new EnableKeyCommand({ KeyId: k.KeyId }));
  await c.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));

  const sched = await c.send(new ScheduleKeyDeletionCommand({
    KeyId: k.KeyId, PendingWindowInDays: 7,
  }));
  assert.equal(sched.KeyState, 'PendingDeletion');
  assert.equal(sched.PendingWindowInDays, 7);
  assert.ok(sched.DeletionDate instanceof Date);
  await rejectsWith(c.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('x') })),
    'KMSInvalidStateException');
  await c.send(new CancelKeyDeletionCommand({ KeyId: k.KeyId }));
  assert.equal((await c.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata.KeyState,
    'Disabled');
});

test('error names: unknown key, bad signature, unknown access key, denied request', async () => {
  const c = clientFor(OWNER);
  await rejectsWith(c.send(new EncryptCommand({
    KeyId: '00000000-0000-4000-8000-000000000000', Plaintext: Buffer.from('x'),
  })), 'NotFoundException');
  await rejectsWith(c.send(new DescribeKeyCommand({ KeyId: 'alias/missing' })),
    'NotFoundException');

  const badSecret = clientFor({ ...OWNER, secretAccessKey: 'not-the-secret' });
  await rejectsWith(badSecret.send(new ListKeysCommand({})), 'InvalidSignatureException');
  const unknown = clientFor({ ...OWNER, accessKeyId: 'AKIAUNKNOWN000000001' });
  await rejectsWith(unknown.send(new ListKeysCommand({})), 'UnrecognizedClientException');

  const { KeyMetadata: k } = await c.send(new CreateKeyCommand({
    Policy: ownerOnlyPolicy('OwnerOnly'),
  }));
  const enc = await c.send(new EncryptCommand({ KeyId: k.Arn, Plaintext: Buffer.from('x') }));
  const reader = clientFor(READER);
  await rejectsWith(reader.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob })),
    'AccessDeniedException');
  await rejectsWith(reader.send(new EncryptCommand({ KeyId: k.Arn, Plaintext: Buffer.from('x') })),
    'AccessDeniedException');
  // A key of another account by bare id does not exist for the outsider; by ARN it is denied.
  const outsider = clientFor(OUTSIDER);
  await rejectsWith(outsider.send(new DescribeKeyCommand({ KeyId: k.KeyId })),
    'NotFoundException');
  await rejectsWith(outsider.send(new DescribeKeyCommand({ KeyId: k.Arn })),
    'AccessDeniedException');
  // The default key policy lets every principal of the key's account in.
  const { KeyMetadata: shared } = await c.send(new CreateKeyCommand({}));
  await reader.send(new EncryptCommand({ KeyId: shared.Arn, Plaintext: Buffer.from('y') }));
});

test('an oversized request gets 413 RequestEntityTooLargeException naming the limit', async () => {
  // 600 KiB of plaintext is 800 KiB of base64: over cloister-kms's 512 KiB request limit, so
  // the HTTP server refuses it before KMS validation would (AWS: HTTP 413, "Common Errors").
  const c = clientFor(OWNER);
  await assert.rejects(c.send(new EncryptCommand({
    KeyId: 'alias/none', Plaintext: Buffer.alloc(600 * 1024, 1),
  })), (err) => {
    assert.equal(err.name, 'RequestEntityTooLargeException', `${err.name}: ${err.message}`);
    assert.equal(err.$metadata.httpStatusCode, 413);
    assert.match(err.message, /limit of 524288 bytes/);
    return true;
  });
});

test('plain HTTP to the HTTPS endpoint is told to use https and a CA bundle', async () => {
  const c = clientFor(OWNER, { endpoint: kms.endpoint.replace('https://', 'http://') });
  await assert.rejects(c.send(new ListKeysCommand({})), (err) => {
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.match(err.message, /speaks HTTPS only/);
    return true;
  });
});
