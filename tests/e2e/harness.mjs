// Starts a real `tessera serve` (CPU backend, the built-in default model with the real Qwen3
// tokenizer) on free loopback ports and stops it. Every e2e test file uses it; nothing is mocked.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';

const BIN = process.env.TESSERA_BIN ?? 'build/tessera';
// Extra `tessera serve` flags for every server of a run, e.g. "--tp 2" (tests/parallel runs the
// whole suite against a tensor-parallel server this way).
const EXTRA = (process.env.TESSERA_E2E_SERVE_ARGS ?? '').split(' ').filter(Boolean);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts a server; `args` are extra flags. Resolves once /ready answers 200.
// With options.tls (a CA certificate), readiness is probed over HTTPS.
export async function startServer(args = [], env = {}, options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-e2e-'));
  const portFile = join(dir, 'ports.json');
  const child = spawn(BIN, ['--log-level', 'warn', 'serve', '--http-port', '0', '--grpc-port', '0',
    '--port-file', portFile, '--max-model-len', '512', '--threads', '2', ...EXTRA, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 60_000;
  let ports;
  while (!ports) {
    if (child.exitCode !== null) throw new Error(`tessera serve exited ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`tessera serve did not start: ${stderr}`); }
    if (existsSync(portFile)) {
      try { ports = JSON.parse(readFileSync(portFile, 'utf8')); } catch { /* being written */ }
    }
    await sleep(50);
  }
  const base = `${options.tls ? 'https' : 'http'}://127.0.0.1:${ports.http}`;
  const get = (path) => (options.tls ? httpsGet(ports.http, path, options.tls) : fetch(`${base}${path}`, {
    headers: env.TESSERA_API_KEY ? { authorization: `Bearer ${env.TESSERA_API_KEY}` } : {},
  }).then(async (r) => ({ status: r.status, body: await r.text() })));
  while ((await get('/ready').then((r) => r.status, () => 0)) !== 200) {
    if (Date.now() > deadline) throw new Error(`tessera serve never became ready: ${stderr}`);
    await sleep(50);
  }
  const models = JSON.parse((await get('/v1/models')).body);
  return {
    base,
    baseURL: `${base}/v1`,
    grpcAddress: `127.0.0.1:${ports.grpc}`,
    model: models.data?.[0]?.id,
    child,
    exited,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const r = await exited;
      rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}

function httpsGet(port, path, ca) {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path, ca }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

// One Prometheus sample value (first series of the family when labels are not given).
export async function metric(base, name) {
  const text = await fetch(`${base}/metrics`).then((r) => r.text());
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) return Number(line.split(' ').pop());
  }
  return undefined;
}
