// Bad input against a real `tessera serve`: each is answered with the right 4xx and an OpenAI-style
// error naming what was wrong, the server keeps serving, and afterwards a fixed greedy output is
// byte-identical to the one before. Also API keys (missing / wrong / right) on both doors, and
// 429 + Retry-After when the admission queue is full.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import { startServer } from './harness.mjs';

let server;
let reference;
const GREEDY = { prompt: 'Once upon a time', max_tokens: 12, temperature: 0 };

async function post(path, body, headers = {}) {
  const r = await fetch(`${server.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json',
    ...headers }, body });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

const greedyText = async () => (await post('/v1/completions', JSON.stringify(GREEDY))).json.choices[0].text;

before(async () => {
  server = await startServer();
  reference = await greedyText();
});
after(async () => {
  assert.equal(await greedyText(), reference, 'the greedy output is byte-identical after all the bad input');
  assert.equal((await server.stop()).code, 0);
});

function assertError(r, status, pattern, param) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json?.error, `an OpenAI error object: ${r.text}`);
  assert.match(r.json.error.message, pattern);
  assert.equal(typeof r.json.error.type, 'string');
  if (param !== undefined) assert.equal(r.json.error.param, param);
}

const cases = [
  ['malformed JSON', '{"prompt": "x",', 400, /not valid JSON/],
  ['a JSON array body', '[1, 2]', 400, /JSON object/],
  ['wrong type for max_tokens', '{"prompt": "x", "max_tokens": "5"}', 400, /max_tokens must be an integer/, 'max_tokens'],
  ['wrong type for prompt', '{"prompt": {"a": 1}}', 400, /prompt must be/, 'prompt'],
  ['unknown field', '{"prompt": "x", "temprature": 0.5}', 400, /unknown field 'temprature'/, 'temprature'],
  ['unknown model', '{"model": "gpt-9", "prompt": "x"}', 404, /gpt-9/, 'model'],
  ['max_tokens 10^9', '{"prompt": "x", "max_tokens": 1000000000}', 400, /max_tokens must be in \[1, 512\], got 1000000000/, 'max_tokens'],
  ['n = 10^6', '{"prompt": "x", "n": 1000000}', 400, /n must be in \[1, \d+\], got 1000000/, 'n'],
  ['negative temperature', '{"prompt": "x", "temperature": -1}', 400, /temperature must be in \[0, 2\], got -1/, 'temperature'],
  ['negative logprobs', '{"prompt": "x", "logprobs": -1}', 400, /logprobs/, 'logprobs'],
  ['token id outside the vocabulary', '{"prompt": [99999999]}', 400, /not a token id/, 'prompt'],
  ['prompt over the context', JSON.stringify({ prompt: 'word '.repeat(600) }), 400, /context/, 'prompt'],
  ['prompt + max_tokens over the context', JSON.stringify({ prompt: 'word '.repeat(300), max_tokens: 300 }), 400,
    /over this model's context of 512/, 'max_tokens'],
  ['json mode', '{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}', 400,
    /json_object.*not supported/, 'response_format', '/v1/chat/completions'],
  ['empty messages', '{"messages": []}', 400, /messages must not be empty/, 'messages', '/v1/chat/completions'],
  ['a message without content', '{"messages": [{"role": "user"}]}', 400, /content is required/, 'messages',
    '/v1/chat/completions'],
];

for (const [name, body, status, pattern, param, path] of cases) {
  test(`refuses ${name}`, async () => {
    assertError(await post(path ?? '/v1/completions', body), status, pattern, param);
  });
}

test('refuses invalid UTF-8 naming the offset', async () => {
  const body = Buffer.concat([Buffer.from('{"prompt": "caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
  assertError(await post('/v1/completions', body), 400, /not valid UTF-8.*offset 15/);
});

test('refuses a 10 MB body with 413 before reading it', async () => {
  const body = JSON.stringify({ prompt: 'a'.repeat(10 * 1024 * 1024) });
  assertError(await post('/v1/completions', body), 413, /over the limit of 4194304 bytes/);
});

test('refuses unknown routes and wrong methods', async () => {
  assert.equal((await fetch(`${server.base}/v1/nothing`)).status, 404);
  assert.equal((await fetch(`${server.base}/v1/completions`)).status, 405);
});

test('a client that sends garbage gets 400 and the server keeps serving', async () => {
  const reply = await new Promise((resolve, reject) => {
    const s = net.connect(Number(new URL(server.base).port), '127.0.0.1', () => s.write('NOT HTTP AT ALL\r\n\r\n'));
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 400/);
  assert.equal(await greedyText(), reference);
});

test('the SDK surfaces errors as APIError with the status', async () => {
  const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  await assert.rejects(client.completions.create({ model: server.model, prompt: 'x', temperature: -1 }),
    (e) => e.status === 400 && /temperature/.test(e.message));
});

test('API keys: missing and wrong keys get 401 / UNAUTHENTICATED, the right key passes', async () => {
  const key = 'sk-e2e-secret';
  const guarded = await startServer(['--api-key', key]);
  try {
    const noKey = await fetch(`${guarded.baseURL}/completions`, { method: 'POST', body: JSON.stringify(GREEDY) });
    assert.equal(noKey.status, 401);
    assert.match((await noKey.json()).error.message, /missing API key/);
    const wrong = new OpenAI({ baseURL: guarded.baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(wrong.completions.create({ prompt: 'x', model: 'm' }), (e) => e.status === 401);
    const right = new OpenAI({ baseURL: guarded.baseURL, apiKey: key, maxRetries: 0 });
    const models = await right.models.list();
    const r = await right.completions.create({ ...GREEDY, model: models.data[0].id });
    assert.equal(r.choices[0].text, reference);
    assert.equal((await fetch(`${guarded.base}/health`)).status, 200, 'probes need no key');

    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync('tessera/v1/inference.proto', { includeDirs: [root] }));
    const client = new pkg.tessera.v1.Inference(guarded.grpcAddress, grpc.credentials.createInsecure());
    const call = (md) => new Promise((resolve) => client.ModelInfo({}, md, (e, x) => resolve(e ?? x)));
    assert.equal((await call(new grpc.Metadata())).code, grpc.status.UNAUTHENTICATED);
    const bad = new grpc.Metadata();
    bad.set('authorization', 'Bearer sk-wrong');
    assert.equal((await call(bad)).code, grpc.status.UNAUTHENTICATED);
    const good = new grpc.Metadata();
    good.set('authorization', `Bearer ${key}`);
    assert.equal((await call(good)).model, models.data[0].id);
    client.close();
  } finally {
    assert.equal((await guarded.stop()).code, 0);
  }
});

test('a full admission queue answers 429 with Retry-After', async () => {
  const small = await startServer(['--max-queue-len', '1', '--max-num-seqs', '1']);
  try {
    const body = JSON.stringify({ prompt: 'go', max_tokens: 200, temperature: 0, ignore_eos: true });
    const results = await Promise.all(Array.from({ length: 8 }, () => fetch(`${small.baseURL}/completions`,
      { method: 'POST', body }).then(async (r) => ({ status: r.status, retry: r.headers.get('retry-after'),
      body: await r.json() }))));
    const refused = results.filter((r) => r.status === 429);
    assert.ok(refused.length >= 1, `some requests are refused: ${results.map((r) => r.status)}`);
    for (const r of refused) {
      assert.ok(Number(r.retry) >= 1);
      assert.equal(r.body.error.type, 'rate_limit_error');
    }
    assert.ok(results.some((r) => r.status === 200));
  } finally {
    assert.equal((await small.stop()).code, 0);
  }
});
