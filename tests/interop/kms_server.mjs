// Starts cloister-kms on 127.0.0.1:0 with a temporary data dir and config, and stops it. It
// serves HTTPS with a CA it makes in its data dir; `tls` is what an SDK client needs to trust it
// (an https.Agent with that CA, as the SDK takes it: requestHandler.httpsAgent).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const REGION = 'us-east-1';
export const OWNER = {
  arn: 'arn:aws:iam::111122223333:user/owner',
  accessKeyId: 'AKIAOWNER00000000001',
  secretAccessKey: 'owner/Secret+Key0000000000000000000000001',
};
export const READER = {
  arn: 'arn:aws:iam::111122223333:user/reader',
  accessKeyId: 'AKIAREADER0000000001',
  secretAccessKey: 'reader/Secret+Key000000000000000000000001',
};
export const OUTSIDER = {
  arn: 'arn:aws:iam::444455556666:user/outsider',
  accessKeyId: 'AKIAOUTSIDER00000001',
  secretAccessKey: 'outsider/Secret+Key0000000000000000000001',
};

export async function startKms() {
  const bin = process.env.CLOISTER_KMS_BIN;
  if (!bin) throw new Error('CLOISTER_KMS_BIN is not set');
  const dir = mkdtempSync(join(tmpdir(), 'cloister-kms-interop-'));
  const principals = [OWNER, READER, OUTSIDER]
    .map((p) => `  - arn: ${p.arn}\n    access_key_id: ${p.accessKeyId}\n` +
      `    secret_access_key: "${p.secretAccessKey}"\n`)
    .join('');
  writeFileSync(join(dir, 'config.yaml'),
    `region: ${REGION}\nprincipals:\n${principals}attestation_max_age_seconds: 300\n`,
    { mode: 0o600 });
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'),
    '--config', join(dir, 'config.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error('cloister-kms did not start')), 20000);
    rl.once('line', (l) => { clearTimeout(timer); resolve(l); });
    child.once('exit', (code) => reject(new Error(`cloister-kms exited with ${code}`)));
  });
  const { endpoint, ca_bundle: caBundle } = JSON.parse(line);
  if (!endpoint.startsWith('https://') || !caBundle) {
    throw new Error(`cloister-kms does not serve HTTPS: ${line}`);
  }
  const httpsAgent = new Agent({ ca: readFileSync(caBundle), keepAlive: true });
  return {
    endpoint,
    caBundle,
    tls: { requestHandler: { httpsAgent } },
    dir,
    async stop() {
      if (child.exitCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await done;
      }
      httpsAgent.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function credentials(p) {
  return { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey };
}
