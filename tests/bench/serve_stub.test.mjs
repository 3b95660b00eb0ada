// `tessera bench serve` against a stub OpenAI-style server whose delays are known: the measured TTFT
// and inter-token latency must match what the stub actually did (its own clock: request headers in to
// first event, and the gaps between events; its timers aim at TTFT_MS and ITL_MS but can fire late on
// a busy machine). ITL and TPOT within 5% of the intended gap; TTFT no earlier than the stub sent it
// and less than half a gap later (connection set-up and both processes' scheduling on a shared
// 2-core machine come on top, but a TTFT taken at the wrong event, the response headers or the second
// token, is off by a whole gap or the whole delay). Counts must match, errors must be counted by
// kind, and the JSON and PNG files must be written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const TESSERA = process.env.TESSERA_BIN;
const TTFT_MS = 200;
const ITL_MS = 80;
const CHUNKS = 6;

// Streams CHUNKS content events: the first TTFT_MS after the request arrived, the rest ITL_MS apart
// (scheduled against absolute times so timer drift does not accumulate). Every `failEvery`-th
// request gets HTTP 503 instead. server.sentTtft / server.sentGaps record what it actually did (ms).
function startStub(failEvery) {
  let count = 0;
  const sentTtft = [];
  const sentGaps = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'stub-model', object: 'model' }] }));
      return;
    }
    const arrived = performance.now();  // the request's headers are in
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      count += 1;
      const request = JSON.parse(body);
      if (failEvery && count % failEvery === 0) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'stub overloaded', type: 'unavailable' } }));
        return;
      }
      assert.equal(request.stream, true);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let sent = 0;
      let last = 0;
      const sendNext = () => {
        const now = performance.now();
        if (sent === 0) sentTtft.push(now - arrived);
        else sentGaps.push(now - last);
        last = now;
        res.write(`data: ${JSON.stringify({ object: 'text_completion', choices: [{ index: 0, text: `tok${sent} `, finish_reason: null }] })}\n\n`);
        sent += 1;
        if (sent < CHUNKS) {
          const due = arrived + TTFT_MS + sent * ITL_MS;
          setTimeout(sendNext, Math.max(0, due - performance.now()));
        } else {
          res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: request.prompt.length, completion_tokens: CHUNKS, total_tokens: CHUNKS + request.prompt.length } })}\n\n`);
          res.end('data: [DONE]\n\n');
        }
      };
      setTimeout(sendNext, Math.max(0, arrived + TTFT_MS - performance.now()));
    });
  });
  server.sentTtft = sentTtft;
  server.sentGaps = sentGaps;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

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

test('measured TTFT and ITL match a stub server with known delays', async () => {
  const server = await startStub(0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-serve-'));
  try {
    const { port } = server.address();
    const r = await runBench(['--url', `http://127.0.0.1:${port}`, '--concurrency', '1,4', '--num-requests', '12',
      '--warmup-requests', '2', '--input-len', '16', '--output-len', String(CHUNKS), '--no-progress',
      '--slo-ttft-ms', '1000', '--output-dir', dir]);
    assert.equal(r.code, 0, r.err + r.out);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
    assert.equal(results.length, 2);
    // What the stub did, by its own clock: each at or just past the intended delay.
    const sentTtft = median(server.sentTtft);
    const sentItl = median(server.sentGaps);
    assert.ok(sentTtft >= TTFT_MS - 1 && sentItl >= ITL_MS - 1, `stub sent at ${sentTtft} / ${sentItl} ms`);
    for (const p of results) {
      assert.equal(p.model, 'stub-model');
      assert.equal(p.num_requests, 12);
      assert.equal(p.completed, 12);
      assert.equal(p.failed, 0);
      assert.equal(p.total_output_tokens, 12 * CHUNKS);
      assert.equal(p.total_input_tokens, 12 * 16);
      assert.equal(p.itl_ms.n, 12 * (CHUNKS - 1));
      const ttft = p.ttft_ms.p50;
      const itl = p.itl_ms.p50;
      assert.ok(ttft >= sentTtft - 1 && ttft < sentTtft + ITL_MS / 2,
                `TTFT p50 ${ttft} ms vs ${sentTtft} sent (${TTFT_MS} intended)`);
      assert.ok(Math.abs(itl - sentItl) / ITL_MS < 0.05, `ITL p50 ${itl} ms vs ${sentItl} sent (${ITL_MS} intended)`);
      const tpot = p.tpot_ms.mean;
      const sentTpot = server.sentGaps.reduce((a, b) => a + b, 0) / server.sentGaps.length;
      assert.ok(Math.abs(tpot - sentTpot) / ITL_MS < 0.05,
                `TPOT mean ${tpot} ms vs ${sentTpot} sent (${ITL_MS} intended)`);
      assert.ok(p.goodput_requests_per_s > 0);
    }
    for (const f of ['latency.png', 'throughput.png']) {
      const png = fs.readFileSync(path.join(dir, f));
      assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${f} is a PNG`);
    }
    assert.match(r.out, /TTFT p50/);
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Poisson arrivals: every request is accounted for and errors are counted by kind', async () => {
  const server = await startStub(4);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-serve-'));
  try {
    const { port } = server.address();
    const r = await runBench(['--url', `http://127.0.0.1:${port}/v1`, '--request-rate', '40', '--num-requests', '16',
      '--warmup-requests', '0', '--input-len', '8', '--output-len', String(CHUNKS), '--no-progress', '--seed', '7',
      '--output-dir', dir]);
    assert.equal(r.code, 0, r.err + r.out);
    const [p] = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
    assert.equal(p.mode, 'request_rate');
    assert.equal(p.num_requests, 16);
    assert.equal(p.completed + p.failed, 16);
    assert.equal(p.failed, 4);
    assert.deepEqual(p.errors, { http_503: 4 });
    assert.match(p.error_examples[0].message, /stub overloaded/);
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad flags are refused with a message naming the value', async () => {
  const r = await runBench(['--url', 'ftp://x', '--concurrency', '1', '--output-dir', os.tmpdir()]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /--url must start with http:\/\//);
  const r2 = await runBench(['--url', 'http://127.0.0.1:1', '--concurrency', 'x', '--output-dir', os.tmpdir()]);
  assert.notEqual(r2.code, 0);
  assert.match(r2.err, /--concurrency takes a comma-separated list/);
  const r3 = await runBench(['--url', 'grpc://127.0.0.1', '--concurrency', '1', '--output-dir', os.tmpdir()]);
  assert.notEqual(r3.code, 0);
  assert.match(r3.err, /grpc:\/\/ target needs a port .*'grpc:\/\/127\.0\.0\.1'/);
  const r4 = await runBench(['--grpc', 'http://127.0.0.1:1', '--concurrency', '1', '--output-dir', os.tmpdir()]);
  assert.notEqual(r4.code, 0);
  assert.match(r4.err, /--grpc takes HOST:PORT, got 'http:\/\/127\.0\.0\.1:1'/);
  const r5 = await runBench(['--url', 'grpc://127.0.0.1:1/v1/x', '--concurrency', '1', '--output-dir', os.tmpdir()]);
  assert.notEqual(r5.code, 0);
  assert.match(r5.err, /grpc:\/\/ target takes no path/);
});
