// Agents against tachyon serve with the official SDKs: tool-call round trips with the OpenAI
// SDK (chat completions, stream and not, a two-step loop: call -> tool result -> answer),
// the Anthropic SDK against /v1/messages (stream and not, tool_use, count_tokens), and the
// Responses API with the OpenAI SDK's responses.create / responses.stream. The model has
// random weights: tool_choice "required" (Anthropic: "any") makes the call happen, and
// the grammar makes it parse; the second step answers in text.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { startServer } from './server.mjs';

let srv;
let openai;
let anthropic;

before(async () => {
  srv = await startServer(['--name', 'mini']);
  openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
  anthropic = new Anthropic({ baseURL: srv.url, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit: ${JSON.stringify(r)}\n${srv.log()}`);
});

const weatherParams = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['C', 'F'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const openaiTools = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather', parameters: weatherParams } }];

function checkWeatherArgs(args) {
  assert.equal(typeof args.city, 'string');
  assert.ok([...args.city].length <= 10, `city ${args.city}`);
  assert.ok(['C', 'F'].includes(args.unit), `unit ${args.unit}`);
  assert.deepEqual(Object.keys(args).sort(), ['city', 'unit']);
}

describe('OpenAI chat completions: tool calls', () => {
  test('two-step agent loop (non-stream)', async () => {
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const r1 = await openai.chat.completions.create({
      model: 'mini', messages, tools: openaiTools, tool_choice: 'required', max_tokens: 200, temperature: 0,
    });
    const c1 = r1.choices[0];
    assert.equal(c1.finish_reason, 'tool_calls');
    assert.ok(c1.message.tool_calls.length >= 1);
    const call = c1.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.match(call.id, /^call_/);
    checkWeatherArgs(JSON.parse(call.function.arguments));

    messages.push(c1.message);
    for (const tc of c1.message.tool_calls) messages.push({ role: 'tool', tool_call_id: tc.id, content: '21 C, sunny' });
    const r2 = await openai.chat.completions.create({
      model: 'mini', messages, tools: openaiTools, tool_choice: 'none', max_tokens: 16, temperature: 0,
    });
    assert.equal(typeof r2.choices[0].message.content, 'string');
    assert.ok(!r2.choices[0].message.tool_calls);
    assert.ok(['stop', 'length'].includes(r2.choices[0].finish_reason));
    assert.ok(r2.usage.prompt_tokens > r1.usage.prompt_tokens - 200);
  });

  test('streamed tool call: deltas assemble into the call (SDK stream helper)', async () => {
    const stream = openai.chat.completions.stream({
      model: 'mini', messages: [{ role: 'user', content: 'Weather in Rome?' }], tools: openaiTools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 200, temperature: 0.8, seed: 5,
    });
    const final = await stream.finalChatCompletion();
    const c = final.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.tool_calls[0].function.name, 'get_weather');
    checkWeatherArgs(JSON.parse(c.message.tool_calls[0].function.arguments));
  });

  test('structured output with the SDK (response_format json_schema)', async () => {
    const r = await openai.chat.completions.create({
      model: 'mini', messages: [{ role: 'user', content: 'A city' }], max_tokens: 200, temperature: 0,
      response_format: { type: 'json_schema', json_schema: { name: 'w', schema: weatherParams, strict: true } },
    });
    checkWeatherArgs(JSON.parse(r.choices[0].message.content));
  });
});

describe('Anthropic Messages API (@anthropic-ai/sdk)', () => {
  const tools = [{ name: 'get_weather', description: 'Current weather', input_schema: weatherParams }];

  test('text answer, non-stream', async () => {
    const m = await anthropic.messages.create({
      model: 'mini', max_tokens: 12, system: 'Be brief.', messages: [{ role: 'user', content: 'Hello' }],
    });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.match(m.id, /^msg_/);
    assert.ok(['end_turn', 'max_tokens'].includes(m.stop_reason));
    assert.equal(m.content[0].type, 'text');
    assert.ok(m.usage.input_tokens > 0);
    assert.ok(m.usage.output_tokens > 0);
  });

  test('tool_use round trip, non-stream', async () => {
    const messages = [{ role: 'user', content: 'Weather in Oslo?' }];
    const m1 = await anthropic.messages.create({
      model: 'mini', max_tokens: 200, messages, tools, tool_choice: { type: 'any' }, temperature: 0,
    });
    assert.equal(m1.stop_reason, 'tool_use');
    const use = m1.content.find((b) => b.type === 'tool_use');
    assert.ok(use, JSON.stringify(m1.content));
    assert.equal(use.name, 'get_weather');
    checkWeatherArgs(use.input);
    messages.push({ role: 'assistant', content: m1.content });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '3 C, snow' }] });
    const m2 = await anthropic.messages.create({ model: 'mini', max_tokens: 10, messages, tools, tool_choice: { type: 'none' } });
    assert.equal(m2.content[0].type, 'text');
  });

  test('tool_use, streamed (SDK stream helper)', async () => {
    const stream = anthropic.messages.stream({
      model: 'mini', max_tokens: 200, messages: [{ role: 'user', content: 'Weather in Lima?' }], tools,
      tool_choice: { type: 'tool', name: 'get_weather' }, temperature: 1, top_k: 40,
    });
    const events = [];
    stream.on('streamEvent', (e) => events.push(e.type));
    const m = await stream.finalMessage();
    assert.equal(events[0], 'message_start');
    assert.equal(events.at(-1), 'message_stop');
    assert.equal(m.stop_reason, 'tool_use');
    const use = m.content.find((b) => b.type === 'tool_use');
    checkWeatherArgs(use.input);
  });

  test('text, streamed', async () => {
    const stream = anthropic.messages.stream({ model: 'mini', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }] });
    let text = '';
    stream.on('text', (t) => { text += t; });
    const m = await stream.finalMessage();
    assert.equal(m.content[0].text, text);
  });

  test('stop_sequences: stop_reason "stop_sequence" names the string', async () => {
    const m = await anthropic.messages.create({
      model: 'mini', max_tokens: 40, temperature: 0, stop_sequences: ['e', 'a', 'o', ' '],
      messages: [{ role: 'user', content: 'Say something' }],
    });
    assert.equal(m.stop_reason, 'stop_sequence', JSON.stringify(m));
    assert.ok(['e', 'a', 'o', ' '].includes(m.stop_sequence));
    for (const s of ['e', 'a', 'o', ' ']) assert.ok(!(m.content[0]?.text ?? '').includes(s));
  });

  test('count_tokens', async () => {
    const r = await anthropic.messages.countTokens({ model: 'mini', messages: [{ role: 'user', content: 'Hello there' }] });
    assert.ok(r.input_tokens > 2);
  });

  test('errors in Anthropic shape', async () => {
    await assert.rejects(
      anthropic.messages.create({ model: 'mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'nope', content: 'x' }] }] }),
      (e) => e.status === 400 && /nope/.test(e.message),
    );
  });
});

describe('OpenAI Responses API', () => {
  const tools = [{ type: 'function', name: 'get_weather', description: 'Current weather', parameters: weatherParams, strict: true }];

  test('text answer', async () => {
    const r = await openai.responses.create({ model: 'mini', input: 'Hello', instructions: 'Be brief.', max_output_tokens: 10 });
    assert.equal(r.object, 'response');
    // a text cut at max_output_tokens is "incomplete" (as OpenAI reports it)
    assert.ok(['completed', 'incomplete'].includes(r.status), r.status);
    assert.equal(typeof r.output_text, 'string');
    assert.ok(r.usage.input_tokens > 0);
  });

  test('function call -> function_call_output -> answer', async () => {
    const r1 = await openai.responses.create({
      model: 'mini', input: 'Weather in Kyiv?', tools, tool_choice: 'required', max_output_tokens: 200, temperature: 0,
    });
    const call = r1.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(r1.output));
    assert.equal(call.name, 'get_weather');
    checkWeatherArgs(JSON.parse(call.arguments));
    const r2 = await openai.responses.create({
      model: 'mini', max_output_tokens: 10, tools, tool_choice: 'none',
      input: [{ role: 'user', content: 'Weather in Kyiv?' }, call, { type: 'function_call_output', call_id: call.call_id, output: '5 C' }],
    });
    assert.ok(['completed', 'incomplete'].includes(r2.status), r2.status);
    assert.equal(typeof r2.output_text, 'string');
  });

  test('streamed (SDK stream helper)', async () => {
    const stream = openai.responses.stream({ model: 'mini', input: 'Weather in Baku?', tools, tool_choice: 'required', max_output_tokens: 200 });
    const types = new Set();
    stream.on('event', (e) => types.add(e.type));
    const r = await stream.finalResponse();
    assert.ok(types.has('response.created') && types.has('response.completed'), [...types].join(','));
    assert.ok(types.has('response.function_call_arguments.delta'), [...types].join(','));
    const call = r.output.find((o) => o.type === 'function_call');
    checkWeatherArgs(JSON.parse(call.arguments));
  });
});
