// Hostile and broken clients: malformed HTTP and JSON, wrong types, huge numbers,
// invalid UTF-8, a 10 MB body, slow and stalled clients, abrupt disconnects (which must
// cancel the request and free its KV at once), and SIGTERM with streams in flight. The
// server must answer or close, keep serving, and never crash or hang.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { httpPost, metrics, rawRequest, startServer, statusOf } from './server.mjs';

let srv;

before(async () => {
  srv = await startServer(['--read-timeout', '2500', '--max-queue', '64']);
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit: ${JSON.stringify(r)}\n${srv.log()}`);
  assert.ok(r.ms < 5000, `shutdown took ${r.ms} ms`);
});

async function healthy() {
  const r = await fetch(`${srv.url}/health`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ok' });
  assert.ok(srv.alive());
}

async function post(path, body) {
  const res = await rawRequest(srv.port, httpPost(path, body));
  const status = statusOf(res);
  const i = res.indexOf('\r\n\r\n');
  let json = null;
  try { json = JSON.parse(res.slice(i + 4)); } catch { /* not JSON */ }
  return { status, json, raw: res };
}

test('malformed JSON and wrong types get 400 in OpenAI error shape', async () => {
  const cases = [
    ['{"messages": [{"role": "user", "content": "hi"}', ''],
    ['{"messages": [{"role": "user", "content": "hi"}], "max_tokens": }', ''],
    ['', ''],
    ['null', ''],
    ['[]', ''],
    ['{"messages": "hi"}', 'messages'],
    ['{"messages": [{"role": "user", "content": 5}]}', 'messages[0].content'],
    ['{"messages": [{"role": "user", "content": "x"}], "max_tokens": "7"}', 'max_tokens'],
    ['{"messages": [{"role": "user", "content": "x"}], "n": 1.5}', 'n'],
    ['{"messages": [{"role": "user", "content": "x"}], "stop": {"a": 1}}', 'stop'],
    ['{"messages": [{"role": "user", "content": "x"}], "stream": "true"}', 'stream'],
    ['{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1e308}', 'max_tokens'],
    ['{"messages": [{"role": "user", "content": "x"}], "top_k": 123456789012345678901234567890}', 'top_k'],
    ['{"messages": [{"role": "user", "content": "x"}], "temperature": 1e999}', ''],
    [`{"messages": ${'['.repeat(50000)}}`, ''],
  ];
  for (const [body, param] of cases) {
    const r = await post('/v1/chat/completions', body);
    assert.equal(r.status, 400, body.slice(0, 80));
    assert.ok(r.json && r.json.error, r.raw.slice(0, 300));
    assert.equal(typeof r.json.error.message, 'string');
    assert.equal(r.json.error.type, 'invalid_request_error');
    if (param) assert.equal(r.json.error.param, param, body);
    assert.ok('code' in r.json.error && 'param' in r.json.error);
  }
  const huge = await post('/v1/completions', '{"prompt": "x", "max_tokens": 2, "seed": 99999999999999999999999999}');
  assert.ok([200, 400].includes(huge.status));
  await healthy();
});

test('invalid UTF-8 in the body and in the request line', async () => {
  const bad = Buffer.concat([Buffer.from('{"messages": [{"role": "user", "content": "'), Buffer.from([0xff, 0xc3, 0x28]),
    Buffer.from('"}], "max_tokens": 2}')]);
  const r = await post('/v1/chat/completions', bad);
  assert.equal(r.status, 400);
  const line = await rawRequest(srv.port, Buffer.concat([Buffer.from('GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n', 'latin1'),
    Buffer.from('X-Bad: \xff\r\nConnection: close\r\n\r\n', 'latin1')]));
  assert.ok([400, 404].includes(statusOf(line)), line.slice(0, 100));
  await healthy();
});

test('a 10 MB body gets 413', async () => {
  const body = `{"prompt": "${'a'.repeat(10 << 20)}"}`;
  const r = await rawRequest(srv.port, httpPost('/v1/completions', body), { timeoutMs: 10000 });
  assert.equal(statusOf(r), 413, r.slice(0, 200));
  // also when the client does not say the length up front (chunked upload)
  const res = await new Promise((resolve, reject) => {
    const req = http.request(`${srv.url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' } },
      (resp) => { resp.resume(); resolve(resp.statusCode); });
    req.on('error', (e) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? resolve('closed') : reject(e)));
    for (let i = 0; i < 10; ++i) req.write('a'.repeat(1 << 20));
    req.end();
  });
  assert.ok(res === 413 || res === 'closed', String(res));
  await healthy();
});

test('unknown route 404, wrong method 405, garbage HTTP 400', async () => {
  assert.equal((await fetch(`${srv.url}/v2/whatever`)).status, 404);
  const m = await fetch(`${srv.url}/v1/completions`);
  assert.equal(m.status, 405);
  assert.equal((await m.json()).error.type, 'invalid_request_error');
  assert.equal(statusOf(await rawRequest(srv.port, 'HELLO\r\n\r\n')), 400);
  assert.equal(statusOf(await rawRequest(srv.port, 'GET / HTTP/1.1\r\nNo colon here\r\n\r\n')), 400);
  const bigHeader = `GET /health HTTP/1.1\r\nX-Big: ${'b'.repeat(100000)}\r\n\r\n`;
  assert.equal(statusOf(await rawRequest(srv.port, bigHeader)), 431);
  await healthy();
});

test('slow clients are served, stalled ones are closed, others keep being served', async () => {
  const slow = rawRequest(srv.port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { delayMs: 15 });
  const stalled = rawRequest(srv.port, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"pro',
    { timeoutMs: 8000 });
  const stalledHeader = rawRequest(srv.port, 'GET /health HTTP/1.1\r\nHo', { timeoutMs: 8000 });
  const t0 = Date.now();
  await healthy();  // while the others dribble or stall
  assert.ok(Date.now() - t0 < 2000, 'a stalled client held up another one');
  assert.equal(statusOf(await slow), 200);
  assert.equal(statusOf(await stalled), 408);
  assert.equal(statusOf(await stalledHeader), 408);
  // many connections that vanish at once
  await Promise.all(Array.from({ length: 50 }, (_, i) => rawRequest(srv.port, 'POST /v1/completions HTTP/1.1\r\n'.slice(0, i % 30),
    { timeoutMs: 50 })));
  await healthy();
});

test('a client that disconnects mid-stream cancels its request and frees its KV', async () => {
  const before = await metrics(srv.url);
  const body = JSON.stringify({ prompt: 'Tell me everything', max_tokens: 3000, ignore_eos: true, stream: true });
  const req = http.request(`${srv.url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' } });
  const gotChunks = new Promise((resolve) => {
    req.on('response', (res) => {
      let n = 0;
      res.on('data', () => { if (++n === 5) resolve(); });
    });
  });
  req.on('error', () => {});
  req.end(body);
  await gotChunks;
  const during = await metrics(srv.url);
  assert.equal(during.tachyon_running_requests, 1);
  assert.ok(during.tachyon_kv_pages_used > 0, JSON.stringify(during));
  req.destroy();
  const t0 = Date.now();
  let m;
  do {
    await new Promise((r) => setTimeout(r, 20));
    m = await metrics(srv.url);
  } while ((m.tachyon_running_requests !== 0 || m.tachyon_kv_pages_used !== 0) && Date.now() - t0 < 3000);
  assert.equal(m.tachyon_running_requests, 0);
  assert.equal(m.tachyon_kv_pages_used, 0, 'KV pages still held after the disconnect');
  assert.equal(m.tachyon_kv_pages_free + m.tachyon_kv_pages_cached, m.tachyon_kv_pages_total);
  assert.equal(m.tachyon_requests_cancelled_total, before.tachyon_requests_cancelled_total + 1);
  assert.ok(m.tachyon_generated_tokens_total - before.tachyon_generated_tokens_total < 3000);
  await healthy();
});

test('SIGTERM with streams in flight: cancels them and exits promptly', async () => {
  const other = await startServer([]);
  const body = JSON.stringify({ prompt: 'Go on forever', max_tokens: 3000, ignore_eos: true, stream: true });
  let started = 0;
  let allStarted;
  const begun = new Promise((resolve) => { allStarted = resolve; });
  const streams = Array.from({ length: 3 }, () => new Promise((resolve) => {
    const req = http.request(`${other.url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' } },
      (res) => {
        let data = '';
        res.on('data', (d) => {
          if (!data && ++started === 3) allStarted();
          data += d;
        });
        res.on('end', () => resolve({ ended: true, data }));
        res.on('error', () => resolve({ ended: false, data }));
        res.on('close', () => resolve({ ended: false, data }));
      });
    req.on('error', () => resolve({ ended: false, data: '' }));
    req.end(body);
  }));
  await begun;  // all three are generating
  const r = await other.stop();
  assert.equal(r.code, 0, other.log());
  assert.ok(r.ms < 5000, `shutdown took ${r.ms} ms`);
  const results = await Promise.all(streams);
  for (const s of results) assert.ok(s.data.includes('data: '), 'stream had started');
});
