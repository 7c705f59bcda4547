// tachyon serve driven by the official OpenAI SDK: chat and completions, streaming and
// not, usage with cached tokens, stop strings, seeds, n, logprobs, 16 concurrent streams,
// and the SDK's typed errors.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';

import { metrics, startServer } from './server.mjs';

let srv;
let client;

before(async () => {
  srv = await startServer(['--name', 'mini']);
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit: ${JSON.stringify(r)}\n${srv.log()}`);
});

const user = (content) => [{ role: 'user', content }];

describe('chat completions', () => {
  test('non-stream', async () => {
    const r = await client.chat.completions.create({
      model: 'mini', messages: user('Hello there'), max_tokens: 8, temperature: 0, ignore_eos: true,
    });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'mini');
    assert.equal(typeof r.created, 'number');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 8);
    assert.ok(r.usage.prompt_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
    assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
    assert.equal(r.timings.predicted_n, 8);
    for (const k of ['prompt_n', 'prompt_ms', 'predicted_ms', 'queue_ms', 'cached_n']) assert.ok(k in r.timings, k);
  });

  test('stream with usage', async () => {
    const stream = await client.chat.completions.create({
      messages: user('Tell me a story'), max_tokens: 12, temperature: 0, ignore_eos: true, stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish = null;
    let usage = null;
    let n = 0;
    for await (const chunk of stream) {
      ++n;
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.ok(n >= 3);
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 12);
    // the same request without streaming gives the same text (greedy)
    const r = await client.chat.completions.create({
      messages: user('Tell me a story'), max_tokens: 12, temperature: 0, ignore_eos: true,
    });
    assert.equal(r.choices[0].message.content, text);
  });

  test('n > 1 and logprobs', async () => {
    const r = await client.chat.completions.create({
      messages: user('abc'), max_tokens: 5, n: 3, seed: 7, temperature: 1, ignore_eos: true, logprobs: true,
      top_logprobs: 3,
    });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    for (const c of r.choices) {
      assert.equal(c.logprobs.content.length, 5);
      for (const t of c.logprobs.content) {
        assert.equal(typeof t.token, 'string');
        assert.ok(t.logprob <= 0);
        assert.ok(Array.isArray(t.bytes));
        assert.equal(t.top_logprobs.length, 3);
      }
    }
    assert.equal(r.usage.completion_tokens, 15);
  });

  test('tools are accepted and passed to the template', async () => {
    const r = await client.chat.completions.create({
      messages: user('weather?'), max_tokens: 2,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
      tool_choice: 'auto',
    });
    assert.equal(r.choices.length, 1);
  });
});

describe('completions', () => {
  test('non-stream and stream agree (greedy)', async () => {
    const params = { model: 'mini', prompt: 'Once upon a time', max_tokens: 10, temperature: 0, ignore_eos: true };
    const r = await client.completions.create(params);
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 10);
    const stream = await client.completions.create({ ...params, stream: true });
    let text = '';
    for await (const chunk of stream) for (const c of chunk.choices) text += c.text;
    assert.equal(text, r.choices[0].text);
  });

  test('token-id prompt and logprobs', async () => {
    const r = await client.completions.create({ prompt: [1, 450, 1996], max_tokens: 4, logprobs: 2, ignore_eos: true });
    assert.equal(r.usage.prompt_tokens, 3);
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 4);
    assert.equal(lp.token_logprobs.length, 4);
    assert.equal(lp.text_offset.length, 4);
    assert.equal(Object.keys(lp.top_logprobs[0]).length >= 1, true);
  });

  test('usage reports cached tokens on a repeated prefix', async () => {
    const words = [];
    for (let i = 0; i < 120; ++i) words.push(['alpha', 'beta', 'gamma', 'delta', 'omega'][i % 5] + i);
    const prompt = `System: ${words.join(' ')}\nUser: hi`;
    const first = await client.completions.create({ prompt, max_tokens: 2 });
    const second = await client.completions.create({ prompt, max_tokens: 2 });
    assert.ok(second.usage.prompt_tokens > 64);
    assert.ok(second.usage.prompt_tokens_details.cached_tokens > 0,
      `cached ${second.usage.prompt_tokens_details.cached_tokens} (first: ${first.usage.prompt_tokens_details.cached_tokens})`);
    assert.equal(second.timings.cached_n, second.usage.prompt_tokens_details.cached_tokens);
    const m = await metrics(srv.url);
    assert.ok(m.tachyon_prefix_cache_hit_tokens_total > 0);
  });

  test('stop strings end the text before them', async () => {
    const base = { prompt: 'The quick brown fox', max_tokens: 24, temperature: 0, ignore_eos: true };
    const full = (await client.completions.create(base)).choices[0].text;
    assert.ok(full.length > 12, JSON.stringify(full));
    const at = Math.floor(full.length / 2);
    const stop = full.slice(at, at + 3);
    const idx = full.indexOf(stop);
    const r = await client.completions.create({ ...base, stop: ['@@never@@', stop] });
    assert.equal(r.choices[0].text, full.slice(0, idx));
    assert.equal(r.choices[0].finish_reason, 'stop');
  });

  test('seeds are reproducible', async () => {
    const base = { prompt: 'Random words:', max_tokens: 16, temperature: 1.0, top_p: 0.95, ignore_eos: true };
    const a = (await client.completions.create({ ...base, seed: 1234 })).choices[0].text;
    const b = (await client.completions.create({ ...base, seed: 1234 })).choices[0].text;
    const c = (await client.completions.create({ ...base, seed: 99 })).choices[0].text;
    assert.equal(a, b);
    assert.notEqual(a, c);
  });
});

test('16 concurrent streams all complete', async () => {
  const one = async (i) => {
    const stream = await client.chat.completions.create({
      messages: user(`Request number ${i}: say something`), max_tokens: 16, temperature: 0, ignore_eos: true,
      stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    return { i, text, finish, usage };
  };
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => one(i)));
  for (const r of results) {
    assert.equal(r.finish, 'length', `stream ${r.i}`);
    assert.equal(r.usage.completion_tokens, 16, `stream ${r.i}`);
  }
  // a request's greedy output does not depend on batching
  const alone = await client.chat.completions.create({
    messages: user('Request number 3: say something'), max_tokens: 16, temperature: 0, ignore_eos: true,
  });
  assert.equal(alone.choices[0].message.content, results[3].text);
});

describe('errors through the SDK', () => {
  test('400 names the parameter', async () => {
    await assert.rejects(
      client.chat.completions.create({ messages: user('x'), temperature: 'hot' }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature',
    );
    await assert.rejects(
      client.chat.completions.create({ messages: 'not an array' }),
      (e) => e.status === 400 && e.param === 'messages',
    );
    await assert.rejects(
      client.completions.create({ prompt: 'x', max_tokens: -1 }),
      (e) => e.status === 400 && e.param === 'max_tokens' && e.type === 'invalid_request_error',
    );
  });

  test('400 context_length_exceeded', async () => {
    await assert.rejects(
      client.completions.create({ prompt: 'hello', max_tokens: 1000000 }),
      (e) => e.status === 400 && e.code === 'context_length_exceeded',
    );
    await assert.rejects(
      client.chat.completions.create({ messages: user('word '.repeat(5000)), max_tokens: 4 }),
      (e) => e.status === 400 && e.code === 'context_length_exceeded' && e.param === 'messages',
    );
  });

  test('404 unknown route', async () => {
    await assert.rejects(client.get('/nope'), (e) => e instanceof OpenAI.NotFoundError);
  });

  test('models list', async () => {
    const list = await client.models.list();
    const models = [];
    for await (const m of list) models.push(m);
    assert.equal(models.length, 1);
    assert.equal(models[0].id, 'mini');
    assert.equal(models[0].object, 'model');
    assert.equal(models[0].owned_by, 'tachyon');
    assert.equal(models[0].quantization, 'Q8_0');
    assert.equal(models[0].weight_type, 'Q8_0');
    assert.ok(models[0].context_length > 0);
  });
});

describe('API keys and a full queue', () => {
  let keyed;
  let full;
  before(async () => {
    [keyed, full] = await Promise.all([startServer(['--api-key', 'sekrit', '--api-key', 'other']),
      startServer(['--max-queue', '0'])]);
  });
  after(async () => {
    const [a, b] = await Promise.all([keyed.stop(), full.stop()]);
    assert.equal(a.code, 0);
    assert.equal(b.code, 0);
  });

  test('401 for a missing or wrong key, 200 for a right one', async () => {
    const bad = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ messages: user('x'), max_tokens: 1 }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
    const res = await fetch(`${keyed.url}/v1/models`);
    assert.equal(res.status, 401);
    const good = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'other', maxRetries: 0 });
    const r = await good.chat.completions.create({ messages: user('x'), max_tokens: 1 });
    assert.equal(r.choices.length, 1);
    assert.equal((await fetch(`${keyed.url}/health`)).status, 200);
  });

  test('429 with Retry-After when the queue is full', async () => {
    const c = new OpenAI({ baseURL: `${full.url}/v1`, apiKey: 'x', maxRetries: 0 });
    await assert.rejects(c.completions.create({ prompt: 'x', max_tokens: 1 }),
      (e) => e instanceof OpenAI.RateLimitError && e.status === 429 && e.headers.get('retry-after') === '1');
    const m = await metrics(full.url);
    assert.ok(m['tachyon_http_requests_total{code="429"}'] >= 1);
  });
});
