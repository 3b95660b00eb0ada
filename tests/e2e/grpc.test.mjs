// @grpc/grpc-js with proto/ loaded by @grpc/proto-loader against a real `tessera serve`: Generate
// streaming, Chat, Tokenize/Detokenize, ModelInfo, cancellation mid-stream (KV usage returns to its
// baseline), deadline, health check, the status codes of bad requests, and 300 concurrent streams.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { startServer, metric, sleep } from './harness.mjs';

const PROTO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
const def = protoLoader.loadSync(['tessera/v1/inference.proto', 'grpc/health/v1/health.proto'],
  { includeDirs: [PROTO_ROOT], keepCase: true, longs: Number, enums: String, defaults: true });
const pkg = grpc.loadPackageDefinition(def);

let server;
let client;
let health;

before(async () => {
  server = await startServer();
  client = new pkg.tessera.v1.Inference(server.grpcAddress, grpc.credentials.createInsecure());
  health = new pkg.grpc.health.v1.Health(server.grpcAddress, grpc.credentials.createInsecure());
});
after(async () => {
  client.close();
  health.close();
  assert.equal((await server.stop()).code, 0);
});

const unary = (method, req, opts = {}) => new Promise((resolve, reject) => {
  client[method](req, new grpc.Metadata(), opts, (err, res) => (err ? reject(err) : resolve(res)));
});

function collect(call) {
  return new Promise((resolve, reject) => {
    const msgs = [];
    call.on('data', (m) => msgs.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(msgs));
  });
}

async function httpGreedy(prompt, maxTokens) {
  const r = await fetch(`${server.baseURL}/completions`, { method: 'POST',
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0 }) }).then((x) => x.json());
  return r.choices[0].text;
}

test('health check says SERVING', async () => {
  const r = await new Promise((resolve, reject) => health.Check({ service: '' }, (e, x) => (e ? reject(e) : resolve(x))));
  assert.equal(r.status, 'SERVING');
});

test('Generate streams tokens, text, logprobs, finish reason and usage', async () => {
  const msgs = await collect(client.Generate({ text: 'Hello there', sampling: { temperature: 0, max_tokens: 8,
    logprobs: 2 } }));
  assert.ok(msgs.length >= 2);
  const last = msgs[msgs.length - 1];
  assert.equal(last.finished, true);
  assert.equal(last.usage.completion_tokens, 8);
  const choices = msgs.flatMap((m) => m.choices);
  const ids = choices.flatMap((c) => c.token_ids);
  assert.equal(ids.length, 8);
  assert.equal(choices.flatMap((c) => c.logprobs).length, 8);
  assert.equal(choices.find((c) => c.finish_reason !== 'FINISH_REASON_UNSPECIFIED').finish_reason,
    'FINISH_REASON_LENGTH');
  const text = choices.map((c) => c.text).join('');
  assert.equal(text, await httpGreedy('Hello there', 8), 'the same text as the HTTP door');
  const detok = await unary('Detokenize', { token_ids: ids });
  assert.equal(detok.text, text);
});

test('Chat, Tokenize and ModelInfo answer', async () => {
  const msgs = await collect(client.Chat({ messages: [{ role: 'user', content: 'Hi' }],
    sampling: { temperature: 0, max_tokens: 3 } }));
  assert.equal(msgs[msgs.length - 1].usage.completion_tokens, 3);
  const t = await unary('Tokenize', { text: 'Hello there' });
  assert.ok(t.count > 0);
  assert.equal(t.token_ids.length, t.count);
  const info = await unary('ModelInfo', {});
  assert.equal(info.model, server.model);
  assert.equal(info.max_model_len, 512);
});

test('cancelling mid-stream stops generation and frees its KV blocks', async () => {
  const baseline = await metric(server.base, 'tessera_kv_cache_usage_ratio');
  const call = client.Generate({ text: 'A long story begins', sampling: { temperature: 0, max_tokens: 400,
    ignore_eos: true } });
  let received = 0;
  await new Promise((resolve) => call.on('data', () => { if (++received === 3) resolve(); }));
  assert.ok((await metric(server.base, 'tessera_kv_cache_usage_ratio')) > baseline, 'the stream holds KV');
  const ended = new Promise((resolve) => call.on('error', resolve));
  call.cancel();
  assert.equal((await ended).code, grpc.status.CANCELLED);
  const until = Date.now() + 10_000;
  let usage;
  while ((usage = await metric(server.base, 'tessera_kv_cache_usage_ratio')) !== baseline && Date.now() < until) {
    await sleep(50);
  }
  assert.equal(usage, baseline, 'KV usage returns to its baseline');
  assert.equal(await metric(server.base, 'tessera_running_sequences'), 0);
});

test('a deadline stops generation with DEADLINE_EXCEEDED', async () => {
  const call = client.Generate({ text: 'Count slowly', sampling: { temperature: 0, max_tokens: 500,
    ignore_eos: true } }, new grpc.Metadata(), { deadline: Date.now() + 300 });
  const err = await collect(call).then(() => null, (e) => e);
  assert.ok(err, 'the call fails');
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
  const until = Date.now() + 10_000;
  while ((await metric(server.base, 'tessera_running_sequences')) !== 0 && Date.now() < until) await sleep(50);
  assert.equal(await metric(server.base, 'tessera_running_sequences'), 0);
});

test('bad requests get INVALID_ARGUMENT / NOT_FOUND with a message', async () => {
  const bad = async (req) => collect(client.Generate(req)).then(() => null, (e) => e);
  let e = await bad({ text: 'x', sampling: { temperature: -1 } });
  assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /temperature/);
  e = await bad({ text: 'x', sampling: { max_tokens: 1000000000 } });
  assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /max_tokens/);
  e = await bad({ text: '' });
  assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
  e = await bad({ model: 'nope', text: 'x' });
  assert.equal(e.code, grpc.status.NOT_FOUND);
  e = await collect(client.Chat({ messages: [] })).then(() => null, (x) => x);
  assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /messages/);
});

test('300 concurrent Generate streams each equal their greedy text (no thread per call)', async () => {
  const prompts = ['Hello there', 'The capital of France is', 'def add(a, b):'];
  const expected = await Promise.all(prompts.map((p) => httpGreedy(p, 6)));
  const calls = Array.from({ length: 300 }, (_, i) => collect(client.Generate({ text: prompts[i % 3],
    sampling: { temperature: 0, max_tokens: 6 } })).then((msgs) => msgs.flatMap((m) => m.choices).map((c) => c.text).join('')));
  // While they run, the server's thread count stays far below one thread per call.
  await sleep(200);
  const status = readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
  const threads = Number(/^Threads:\s+(\d+)/m.exec(status)[1]);
  assert.ok(threads < 100, `${threads} threads serve 300 streams`);
  const texts = await Promise.all(calls);
  texts.forEach((t, i) => assert.equal(t, expected[i % 3], `stream ${i}`));
  assert.equal(await metric(server.base, 'tessera_running_sequences'), 0);
});
