// SIGTERM drains: requests in flight finish, new ones are refused with 503, /ready turns 503, and
// the process exits 0. A client that disconnects mid-stream cancels its request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, metric, sleep } from './harness.mjs';

test('a client that disconnects mid-stream cancels its request', async () => {
  const server = await startServer();
  try {
    const controller = new AbortController();
    const r = await fetch(`${server.baseURL}/completions`, { method: 'POST', signal: controller.signal,
      body: JSON.stringify({ prompt: 'abc', max_tokens: 400, temperature: 0, ignore_eos: true, stream: true }) });
    const reader = r.body.getReader();
    await reader.read();
    await reader.read();
    assert.equal(await metric(server.base, 'tessera_running_sequences'), 1);
    controller.abort();
    const until = Date.now() + 10_000;
    while ((await metric(server.base, 'tessera_running_sequences')) !== 0 && Date.now() < until) await sleep(50);
    assert.equal(await metric(server.base, 'tessera_running_sequences'), 0);
    assert.equal(await metric(server.base, 'tessera_kv_cache_usage_ratio'), 0);
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

test('SIGTERM finishes in-flight streams, refuses new requests, exits 0', async () => {
  const server = await startServer(['--drain-timeout', '30']);
  const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  const stream = await client.completions.create({ model: server.model, prompt: 'drain me', max_tokens: 60,
    temperature: 0, ignore_eos: true, stream: true });
  const iterator = stream[Symbol.asyncIterator]();
  let text = (await iterator.next()).value.choices[0].text;
  server.child.kill('SIGTERM');
  await sleep(200);
  const refused = await fetch(`${server.baseURL}/completions`, { method: 'POST',
    body: JSON.stringify({ prompt: 'late', max_tokens: 2 }) }).catch(() => null);
  if (refused) assert.equal(refused.status, 503, 'new requests are refused while draining');
  const ready = await fetch(`${server.base}/ready`).catch(() => null);
  if (ready) assert.equal(ready.status, 503);
  let finish;
  for (let n = await iterator.next(); !n.done; n = await iterator.next()) {
    text += n.value.choices[0]?.text ?? '';
    finish = n.value.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'length', 'the in-flight stream ran to its end');
  const { code } = await server.exited;
  assert.equal(code, 0);
});
