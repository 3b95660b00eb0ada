// TLS on both doors (--tls-cert/--tls-key) with a self-signed certificate made by the openssl CLI:
// an HTTPS completion (streamed) and a gRPC call over SSL credentials succeed; a plain-HTTP client
// gets nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { startServer } from './harness.mjs';

test('both doors serve over TLS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  const ca = readFileSync(cert);
  const server = await startServer(['--tls-cert', cert, '--tls-key', key], {}, { tls: ca });
  try {
    const port = Number(new URL(server.base).port);
    const body = await new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/v1/completions', method: 'POST', ca },
        (res) => { let d = ''; res.on('data', (x) => { d += x; }); res.on('end', () => resolve({ status: res.statusCode, d })); });
      req.on('error', reject);
      req.end(JSON.stringify({ prompt: 'Hello', max_tokens: 4, temperature: 0, stream: true }));
    });
    assert.equal(body.status, 200);
    assert.match(body.d, /data: \[DONE\]/);
    const plain = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 'refused');
    assert.notEqual(plain, 200, 'plain HTTP is not served on a TLS port');

    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync('tessera/v1/inference.proto', { includeDirs: [root] }));
    const client = new pkg.tessera.v1.Inference(server.grpcAddress, grpc.credentials.createSsl(ca));
    const info = await new Promise((resolve, reject) => client.ModelInfo({}, (e, x) => (e ? reject(e) : resolve(x))));
    assert.equal(info.model, server.model);
    client.close();
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});
