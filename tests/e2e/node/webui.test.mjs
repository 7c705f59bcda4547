// The chat page at / (src/server/webui/index.html) in a real headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core; no browser is ever downloaded): it loads
// without console errors or requests outside the server, streams an answer with a usage line
// (tokens/s, context), keeps the conversation over a reload, shows the server's
// context_length_exceeded error, renders reasoning / tool calls / code fences as text, and
// fits a 380 px screen. Also: GET / is text/html, POST / is 405, --no-webui gives 404.
// Screenshots go to $TACHYON_ARTIFACT_DIR (default: the working directory); their paths are
// printed. Without /usr/bin/chromium the browser tests are skipped.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startServer } from './server.mjs';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
const artifactDir = process.env.TACHYON_ARTIFACT_DIR || process.cwd();

let srv;
let browser;

before(async () => {
  srv = await startServer(['--name', 'mini']);
  if (haveChromium) {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
             '--no-first-run'],
    });
  }
});

after(async () => {
  if (browser) await browser.close();
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit: ${JSON.stringify(r)}\n${srv.log()}`);
});

// A fresh page (own localStorage) that records console errors, page errors, failed requests
// and any request that does not go to the server.
async function openPage({ width = 1000, height = 720 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const seen = { errors: [], failed: [], external: [] };
  page.on('console', (m) => { if (m.type() === 'error') seen.errors.push(m.text()); });
  page.on('pageerror', (e) => seen.errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => seen.failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(`${srv.url}/`) && !u.startsWith('data:')) seen.external.push(u);
  });
  await page.goto(`${srv.url}/`);
  await page.waitForFunction(() => /context \d+ tokens/.test(document.getElementById('model-meta').textContent));
  return { context, page, seen };
}

async function setSetting(page, id, value) {
  await page.click('#settings-toggle');
  await page.fill(id, String(value));
  await page.click('#s-close');
}

async function screenshot(page, name) {
  fs.mkdirSync(artifactDir, { recursive: true });
  const file = path.resolve(artifactDir, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

// Resolves once the last answer is complete: Stop gone, stats line shown.
async function waitAnswer(page) {
  await page.waitForFunction(() => {
    const last = [...document.querySelectorAll('.msg.assistant')].pop();
    return last && document.getElementById('stop').hidden &&
           (!last.querySelector('.stats').hidden || !last.querySelector('.error').hidden);
  }, null, { timeout: 60000 });
}

describe('routes', () => {
  test('GET / serves the page, POST / is 405', async () => {
    for (const p of ['/', '/index.html']) {
      const r = await fetch(`${srv.url}${p}`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.match(r.headers.get('content-security-policy'), /connect-src 'self'/);
      const html = await r.text();
      assert.match(html, /^<!doctype html>/i);
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no external resources');
    }
    const r = await fetch(`${srv.url}/`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
  });

  test('--no-webui: / is 404, the API still works', async () => {
    const s = await startServer(['--no-webui']);
    try {
      assert.equal((await fetch(`${s.url}/`)).status, 404);
      assert.equal((await fetch(`${s.url}/index.html`)).status, 404);
      assert.equal((await fetch(`${s.url}/v1/models`)).status, 200);
    } finally {
      const r = await s.stop();
      assert.equal(r.code, 0);
    }
  });
});

describe('chat page in Chromium', () => {
  test('send, stream, usage line, reload keeps the conversation', async (t) => {
    if (!haveChromium) return t.skip(`${CHROMIUM} not found`);
    const { context, page, seen } = await openPage();
    try {
      await setSetting(page, '#s-max-tokens', 24);
      await setSetting(page, '#s-seed', 7);
      // Count renders of the answer while Stop is shown: the text must arrive in pieces.
      await page.evaluate(() => {
        window.__liveRenders = 0;
        new MutationObserver(() => {
          if (!document.getElementById('stop').hidden) ++window.__liveRenders;
        }).observe(document.getElementById('thread'), { childList: true, subtree: true, characterData: true });
      });
      await page.fill('#input', 'Hello there! Tell me about the sea.');
      await page.press('#input', 'Enter');
      await page.waitForSelector('.msg.user');
      await waitAnswer(page);

      const answer = page.locator('.msg.assistant').last();
      const text = await answer.locator('.content').textContent();
      const stats = await answer.locator('.stats').textContent();
      const lives = await page.evaluate(() => window.__liveRenders);
      console.log(`answer: ${JSON.stringify(text.slice(0, 80))}\nstats: ${stats}\nrenders while streaming: ${lives}`);
      assert.ok(await answer.locator('.error').isHidden(), await answer.locator('.error').textContent());
      assert.ok(text.length > 0 && text !== '(empty answer)', 'streamed text');
      assert.match(stats, /^([1-9]\d*) tokens · \d+(\.\d)? tokens\/s/);
      assert.match(stats, /context \d+ \/ \d+ \(\d+%\)/);
      assert.equal(await page.inputValue('#input'), '', 'the input is cleared');
      assert.equal(await page.locator('#conversations li').count(), 1);
      assert.match(await page.locator('#conversations li .title').textContent(), /^Hello there!/);

      // Shift+Enter is a newline, not a send.
      await page.press('#input', 'a');
      await page.press('#input', 'Shift+Enter');
      await page.press('#input', 'b');
      assert.equal(await page.inputValue('#input'), 'a\nb');
      assert.equal(await page.locator('.msg.user').count(), 1);
      await page.fill('#input', '');

      await page.reload();
      await page.waitForSelector('.msg.assistant');
      assert.equal(await page.locator('.msg.assistant .content').last().textContent(), text);
      assert.equal(await page.locator('.msg.assistant .stats').last().textContent(), stats);
      assert.equal(await page.inputValue('#s-max-tokens'), '24', 'settings survive the reload');
      await screenshot(page, 'webui.png');

      // New conversation, then delete it: back to one.
      await page.click('#new-chat');
      assert.equal(await page.locator('#conversations li').count(), 2);
      assert.equal(await page.locator('.msg').count(), 0);
      await page.locator('#conversations li.current .del').click();
      assert.equal(await page.locator('#conversations li').count(), 1);
      assert.equal(await page.locator('.msg.assistant .content').last().textContent(), text);

      assert.deepEqual(seen.errors, [], 'console errors');
      assert.deepEqual(seen.failed, [], 'failed requests');
      assert.deepEqual(seen.external, [], 'requests outside the server');
    } finally {
      await context.close();
    }
  });

  test('Stop ends a long answer and keeps its text', async (t) => {
    if (!haveChromium) return t.skip(`${CHROMIUM} not found`);
    const { context, page, seen } = await openPage();
    try {
      await setSetting(page, '#s-max-tokens', 4000);
      await setSetting(page, '#s-seed', 7);  // a fixed draw: no early end-of-sequence by chance
      await page.fill('#input', 'Write a very long story.');
      await page.click('#send');
      await page.waitForFunction(() => {
        const c = [...document.querySelectorAll('.msg.assistant .content')].pop();
        return c && c.textContent.length > 0;
      });
      await page.click('#stop');
      await waitAnswer(page);
      const answer = page.locator('.msg.assistant').last();
      assert.ok((await answer.locator('.content').textContent()).length > 0);
      assert.match(await answer.locator('.stats').textContent(), /stopped/);
      assert.ok(await page.locator('#send').isVisible());
      // The server's request ends with the connection; the next one works.
      await setSetting(page, '#s-max-tokens', 4);
      await page.fill('#input', 'Again');
      await page.press('#input', 'Enter');
      await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 2);
      await waitAnswer(page);
      assert.match(await page.locator('.msg.assistant .stats').last().textContent(), /tokens\/s/);
      assert.deepEqual(seen.errors, []);
      for (const f of seen.failed) assert.match(f, /chat\/completions net::ERR_ABORTED/);  // the stopped stream only
    } finally {
      await context.close();
    }
  });

  test('a conversation over the context shows the server error', async (t) => {
    if (!haveChromium) return t.skip(`${CHROMIUM} not found`);
    const { context, page, seen } = await openPage();
    try {
      const nCtx = (await (await fetch(`${srv.url}/v1/models`)).json()).data[0].context_length;
      await setSetting(page, '#s-max-tokens', 100000000);  // prompt + max_tokens over the context: 400
      await page.fill('#input', 'Hello');
      await page.press('#input', 'Enter');
      await waitAnswer(page);
      const err = await page.locator('.msg.assistant .error').last().textContent();
      assert.ok(err.startsWith(`The conversation is longer than the model\u2019s context (${nCtx} tokens). ` +
                               'Start a new conversation or shorten it.'), err);
      assert.match(err, /maximum context length is/, 'the server message is shown too');
      assert.ok(await page.locator('#send').isVisible());
      // Chromium itself logs the 400 response; nothing else may be logged.
      for (const e of seen.errors) assert.match(e, /status of 400/);
    } finally {
      await context.close();
    }
  });

  test('a server with --api-key: the page asks for the key, then works', async (t) => {
    if (!haveChromium) return t.skip(`${CHROMIUM} not found`);
    const s = await startServer(['--api-key', 'sesame']);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors = [];
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      await page.goto(`${s.url}/`);  // the page itself needs no key
      await page.waitForFunction(() => /API key/.test(document.getElementById('model-meta').textContent));
      await setSetting(page, '#s-api-key', 'sesame');
      await page.waitForFunction(() => /context \d+ tokens/.test(document.getElementById('model-meta').textContent));
      await setSetting(page, '#s-max-tokens', 4);
      await page.fill('#input', 'Hi');
      await page.press('#input', 'Enter');
      await waitAnswer(page);
      assert.match(await page.locator('.msg.assistant .stats').last().textContent(), /tokens\/s/);
      for (const e of errors) assert.match(e, /status of 401/);  // Chromium logs the first /v1/models
    } finally {
      await context.close();
      await s.stop();
    }
  });

  test('reasoning, tool calls and code render as text', async (t) => {
    if (!haveChromium) return t.skip(`${CHROMIUM} not found`);
    const { context, page, seen } = await openPage({ width: 380, height: 760 });
    try {
      // A canned stream in the shapes reasoning / tool-calling servers send.
      const chunk = (delta, extra = {}) =>
        `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
      const body = [
        chunk({ role: 'assistant', reasoning_content: 'Let me think' }),
        chunk({ reasoning_content: ' about <i>it</i>.' }),
        chunk({ content: 'Here:\n```html\n<b>not bold</b>\n```\ndone <img src=x onerror=alert(1)>' }),
        chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"ci' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] }),
        `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }],
                                  timings: { predicted_per_second: 42.5, prompt_per_second: 100, prompt_n: 9 } })}\n\n`,
        `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 20, total_tokens: 29 } })}\n\n`,
        'data: [DONE]\n\n',
      ].join('');
      await page.route('**/v1/chat/completions', (route) =>
        route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body }));
      await page.fill('#input', 'What is the weather in Paris?');
      await page.press('#input', 'Enter');
      await waitAnswer(page);
      const answer = page.locator('.msg.assistant').last();
      const details = answer.locator('details.reasoning');
      assert.ok(await details.isVisible());
      assert.equal(await details.getAttribute('open'), null, 'collapsed');
      assert.equal(await details.locator('summary').textContent(), 'Reasoning');
      assert.equal(await details.locator('.text').textContent(), 'Let me think about <i>it</i>.');
      assert.equal(await answer.locator('pre').count(), 1);
      assert.equal(await answer.locator('pre').getAttribute('data-lang'), 'html');
      assert.equal(await answer.locator('pre').textContent(), '<b>not bold</b>');
      assert.equal(await answer.locator('b, i, img').count(), 0, 'model text is never parsed as HTML');
      assert.match(await answer.locator('.content').textContent(), /done <img src=x onerror=alert\(1\)>$/);
      assert.equal(await answer.locator('.tool').textContent(), 'get_weather({"city":"Paris"})');
      const nCtx = (await (await fetch(`${srv.url}/v1/models`)).json()).data[0].context_length;
      assert.equal(await answer.locator('.stats').textContent(),
                   '20 tokens · 42.5 tokens/s · prompt 9 tokens at 100 tokens/s · ' +
                   `context 29 / ${nCtx} (${(100 * 29 / nCtx).toFixed(0)}%)`);
      // 380 px: nothing wider than the screen, the composer visible.
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 380));
      assert.ok(await page.locator('#send').isVisible());
      await screenshot(page, 'webui-380px.png');
      // The conversation list slides in from the menu button and out again on a choice.
      const sidebarX = async () => (await page.locator('#sidebar').boundingBox()).x;
      assert.ok(await sidebarX() < 0, 'hidden at first');
      await page.click('#menu');
      await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().x === 0);
      await page.locator('#conversations li .title').first().click();
      await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0);
      assert.deepEqual(seen.errors, []);
      assert.deepEqual(seen.external, []);
    } finally {
      await context.close();
    }
  });
});
