// Starts a real `tessera serve` (CPU backend, the built-in default model with the real Qwen3
// tokenizer) on free loopback ports and stops it. Every e2e test file uses it; nothing is mocked.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = process.env.TESSERA_BIN ?? 'build/tessera';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts a server; `args` are extra flags. Resolves once /ready answers 200.
export async function startServer(args = [], env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-e2e-'));
  const portFile = join(dir, 'ports.json');
  const child = spawn(BIN, ['--log-level', 'warn', 'serve', '--http-port', '0', '--grpc-port', '0',
    '--port-file', portFile, '--max-model-len', '512', '--threads', '2', ...args], {
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
  const base = `http://127.0.0.1:${ports.http}`;
  while ((await fetch(`${base}/ready`).then((r) => r.status, () => 0)) !== 200) {
    if (Date.now() > deadline) throw new Error(`tessera serve never became ready: ${stderr}`);
    await sleep(50);
  }
  const models = await fetch(`${base}/v1/models`, {
    headers: env.TESSERA_API_KEY ? { authorization: `Bearer ${env.TESSERA_API_KEY}` } : {},
  }).then((r) => r.json());
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

// One Prometheus sample value (first series of the family when labels are not given).
export async function metric(base, name) {
  const text = await fetch(`${base}/metrics`).then((r) => r.text());
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) return Number(line.split(' ').pop());
  }
  return undefined;
}
