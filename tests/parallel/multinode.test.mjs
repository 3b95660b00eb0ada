// Two "machines" on one host: a TP = 2 job started as two separate `tessera serve` process trees
// (--nnodes 2 --node-rank 0|1 --rendezvous 127.0.0.1:PORT --tp-secret-file), as LeaderWorkerSet,
// srun or mpirun would start it, talking over UCX on loopback. Checks: node 1 runs no server and
// joins node 0; greedy text through the openai SDK equals a one-process server's; a node with the
// wrong secret is refused; killing node 1 with SIGKILL fails the in-flight request, turns /ready
// false and makes node 0 exit non-zero within the bounds docs/PARALLEL.md promises.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startServer, sleep } from '../e2e/harness.mjs';

const BIN = process.env.TESSERA_BIN ?? 'build/tessera';
const PROMPTS = ['The capital of France is', 'def fibonacci(n):', 'Once upon a time'];
const dir = mkdtempSync(join(tmpdir(), 'tessera-multinode-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function secretFile(name) {
  const f = join(dir, name);
  writeFileSync(f, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
  return f;
}

// Node 1 of the job: no server, only the worker loop of its rank.
function startNode1(rendezvous, secret) {
  const child = spawn(BIN, ['--log-level', 'warn', 'serve', '--threads', '2', '--max-model-len', '512', '--tp', '2',
    '--nnodes', '2', '--node-rank', '1', '--rendezvous', rendezvous, '--tp-secret-file', secret], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, stderr: () => stderr };
}

async function greedyTexts(server) {
  const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  const out = [];
  for (const prompt of PROMPTS) {
    const r = await client.completions.create({ model: server.model, prompt, max_tokens: 16, temperature: 0 });
    out.push(r.choices[0].text);
  }
  return out;
}

const withTimeout = (p, ms, what) => Promise.race([p, sleep(ms).then(() => { throw new Error(`${what} after ${ms} ms`); })]);

test('two nodes serve the same greedy text as one process, and a lost node fails fast', async () => {
  const single = await startServer();
  const expected = await greedyTexts(single);
  assert.equal((await single.stop()).code, 0);

  const rendezvous = `127.0.0.1:${await freePort()}`;
  const secret = secretFile('job.secret');
  const node1 = startNode1(rendezvous, secret);
  const node0 = await startServer(['--tp', '2', '--nnodes', '2', '--node-rank', '0', '--rendezvous', rendezvous,
    '--tp-secret-file', secret]);
  try {
    assert.equal(node1.child.exitCode, null, `node 1 is running: ${node1.stderr()}`);
    assert.deepEqual(await greedyTexts(node0), expected, 'greedy text of the two-node job equals one process');

    // A stream in flight when node 1 is killed ends with an error, not a hang.
    const client = new OpenAI({ baseURL: node0.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
    const stream = await client.completions.create({ model: node0.model, prompt: PROMPTS[0], max_tokens: 400,
      temperature: 0, stream: true, stream_options: { include_usage: true } });
    const consumed = (async () => {
      let chunks = 0;
      try {
        for await (const chunk of stream) {
          chunks += 1;
          if (chunk.choices?.[0]?.finish_reason === 'length') return { chunks, ended: 'length' };
        }
        return { chunks, ended: 'closed' };
      } catch (e) {
        return { chunks, ended: 'error', message: String(e) };
      }
    })();
    await sleep(300);
    const killedAt = Date.now();
    node1.child.kill('SIGKILL');
    const result = await withTimeout(consumed, 15_000, 'the in-flight stream did not end');
    assert.notEqual(result.ended, 'length', 'the stream cannot finish normally without node 1');
    assert.ok(Date.now() - killedAt < 10_000, `the stream ended ${Date.now() - killedAt} ms after the kill`);

    const ready = await fetch(`${node0.base}/ready`).then((r) => r.status, () => 0);
    assert.notEqual(ready, 200, '/ready is not 200 after losing a node');
    const { code } = await withTimeout(node0.exited, 20_000, 'node 0 did not exit');
    assert.notEqual(code, 0, 'node 0 exits non-zero so its supervisor restarts the job');
  } finally {
    if (node1.child.exitCode === null) node1.child.kill('SIGKILL');
    await node0.stop();
  }
});

test('a node holding another secret is refused at the rendezvous', async () => {
  const rendezvous = `127.0.0.1:${await freePort()}`;
  const node1 = startNode1(rendezvous, secretFile('other.secret'));
  const node0 = spawn(BIN, ['--log-level', 'warn', 'serve', '--threads', '2', '--max-model-len', '512',
    '--http-port', '0', '--grpc-port', '0', '--tp', '2', '--nnodes', '2', '--node-rank', '0', '--rendezvous',
    rendezvous, '--tp-secret-file', secretFile('job2.secret'), '--rendezvous-timeout', '8'], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr0 = '';
  node0.stderr.on('data', (d) => { stderr0 += d; });
  const exited0 = new Promise((resolve) => node0.on('exit', (code) => resolve(code)));
  try {
    const code1 = (await withTimeout(node1.exited, 30_000, 'node 1 with the wrong secret did not exit')).code;
    assert.notEqual(code1, 0, 'node 1 is refused');
    assert.match(node1.stderr(), /secret|authenticat|HMAC|MAC/i, `node 1 names the cause: ${node1.stderr()}`);
    const code0 = await withTimeout(exited0, 30_000, 'node 0 did not give up');
    assert.notEqual(code0, 0, `node 0 never serves a job whose node was refused: ${stderr0}`);
  } finally {
    if (node1.child.exitCode === null) node1.child.kill('SIGKILL');
    if (node0.exitCode === null) node0.kill('SIGKILL');
  }
});
