// Smoke run of `tessera bench serve` against a real CPU `tessera serve` (built-in default model,
// real Qwen3 tokenizer), started by the e2e harness on free loopback ports: OpenAI completions and
// chat over HTTP, Generate and Chat over gRPC, with ignore_eos so every output length is exact.
// Asserts files written, request counts, zero errors and exact token counts; never asserts speed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../e2e/harness.mjs';

const TESSERA = process.env.TESSERA_BIN ?? 'build/tessera';
const INPUT_LEN = 12;
const OUTPUT_LEN = 6;
const NUM_REQUESTS = 6;
let server;

before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function runBench(args) {
  return new Promise((resolve) => {
    const p = spawn(TESSERA, ['bench', 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

// Runs one bench over `target` flags at concurrency 1 and 3 and checks what it wrote.
async function benchAndCheck(target, { api, exactInput }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
  try {
    const r = await runBench([...target, '--api', api, '--concurrency', '1,3', '--num-requests', String(NUM_REQUESTS),
      '--warmup-requests', '1', '--input-len', String(INPUT_LEN), '--output-len', String(OUTPUT_LEN), '--ignore-eos',
      '--slo-ttft-ms', '60000', '--no-progress', '--output-dir', dir]);
    assert.equal(r.code, 0, r.err + r.out);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
    assert.equal(results.length, 2);
    assert.deepEqual(results.map((p) => p.offered), [1, 3]);
    for (const p of results) {
      assert.equal(p.model, server.model);
      assert.equal(p.num_requests, NUM_REQUESTS);
      assert.equal(p.completed, NUM_REQUESTS, JSON.stringify(p.error_examples));
      assert.equal(p.failed, 0);
      assert.deepEqual(p.errors, {});
      assert.equal(p.total_output_tokens, NUM_REQUESTS * OUTPUT_LEN);
      if (exactInput) assert.equal(p.total_input_tokens, NUM_REQUESTS * INPUT_LEN);
      else assert.ok(p.total_input_tokens >= NUM_REQUESTS * INPUT_LEN, `${p.total_input_tokens} prompt tokens`);
      assert.equal(p.ttft_ms.n, NUM_REQUESTS);
      assert.ok(p.ttft_ms.p50 > 0 && p.e2e_ms.p99 >= p.ttft_ms.p99);
      assert.ok(p.itl_ms.n >= 1);
      assert.equal(p.goodput_requests_per_s, p.request_throughput);  // a 60 s TTFT SLO every request meets
    }
    for (const f of ['latency.png', 'throughput.png']) {
      const png = fs.readFileSync(path.join(dir, f));
      assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${f} is a PNG`);
    }
    assert.match(r.out, /TTFT p50/);
    return results;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('HTTP completions (token-id prompts): exact lengths, no errors', async () => {
  const [p] = await benchAndCheck(['--url', server.base], { api: 'completions', exactInput: true });
  assert.equal(p.protocol, 'http');
});

test('HTTP chat completions: no errors, exact output lengths', async () => {
  await benchAndCheck(['--url', `${server.base}/v1`], { api: 'chat', exactInput: false });
});

test('gRPC Generate (--grpc HOST:PORT): exact lengths, no errors', async () => {
  const [p] = await benchAndCheck(['--grpc', server.grpcAddress], { api: 'completions', exactInput: true });
  assert.equal(p.protocol, 'grpc');
  assert.equal(p.url, `grpc://${server.grpcAddress}`);
});

test('gRPC Chat (--url grpc://): no errors, exact output lengths', async () => {
  await benchAndCheck(['--url', `grpc://${server.grpcAddress}`], { api: 'chat', exactInput: false });
});

test('gRPC errors are counted by status kind, not dropped', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
  try {
    // Prompts longer than the served context (512 tokens): the validator refuses every request.
    const r = await runBench(['--grpc', server.grpcAddress, '--concurrency', '2', '--num-requests', '3',
      '--warmup-requests', '0', '--input-len', '600', '--output-len', '4', '--no-progress', '--output-dir', dir]);
    assert.equal(r.code, 0, r.err + r.out);
    const [p] = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
    assert.equal(p.num_requests, 3);
    assert.equal(p.failed, 3);
    assert.deepEqual(p.errors, { grpc_invalid_argument: 3 });
    assert.match(p.error_examples[0].message, /600/);  // the server's message names the length seen
    for (const f of ['latency.png', 'throughput.png']) assert.ok(fs.statSync(path.join(dir, f)).size > 0, f);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
