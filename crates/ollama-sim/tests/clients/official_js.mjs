// Drives ollama-sim with Ollama's official JavaScript client (the `ollama` package on npm).
//
// Usage: node official_js.mjs URL
//
// Every call below is one a JavaScript program makes against a real Ollama server. The
// script exits non-zero with the failing check's message if the simulator answers in a shape
// the client cannot read or with values a real server would not give.

import { Ollama } from 'ollama'

function check(condition, message) {
  if (!condition) {
    console.error(`FAILED: ${message}`)
    process.exit(1)
  }
}

async function expectError(call, status, words, what) {
  try {
    await call()
  } catch (error) {
    check(error.status_code === status, `${what}: status ${error.status_code}`)
    check(String(error.error).includes(words), `${what}: wording ${error.error}`)
    return
  }
  check(false, `${what} must fail`)
}

const client = new Ollama({ host: process.argv[2] })
const report = {}

const listed = await client.list()
const names = listed.models.map((model) => model.model)
check(names.includes('alpha'), `list() names the catalogue: ${names}`)
const alpha = listed.models.find((model) => model.model === 'alpha')
check(alpha.size > 0 && alpha.digest, `list() gives size and digest: ${JSON.stringify(alpha)}`)

const shown = await client.show({ model: 'alpha' })
check(shown.model_info, 'show() gives model_info')
check((shown.capabilities ?? []).includes('thinking'), `show() capabilities: ${shown.capabilities}`)

// A preload as JavaScript programs write it: generate with no prompt and a keep_alive.
const preload = await client.generate({ model: 'alpha', prompt: '', keep_alive: '10m' })
check(preload.done && preload.response === '', `a preload: ${JSON.stringify(preload)}`)
const running = await client.ps()
check(running.models.length === 1 && running.models[0].model === 'alpha', `ps(): ${JSON.stringify(running)}`)
check(!Number.isNaN(new Date(running.models[0].expires_at).getTime()), 'ps() gives a date in expires_at')

const reply = await client.chat({
  model: 'alpha',
  messages: [{ role: 'user', content: 'Say hello.' }],
  think: true,
  options: { num_ctx: 2048, num_predict: 64 },
})
check(reply.done && reply.message.role === 'assistant', `chat(): ${JSON.stringify(reply)}`)
check(['stop', 'length'].includes(reply.done_reason), `done_reason: ${reply.done_reason}`)
check(reply.eval_count > 0 && reply.eval_count <= 64, `eval_count within num_predict: ${reply.eval_count}`)
report.chat_thinking_chars = (reply.message.thinking ?? '').length

const stream = await client.chat({
  model: 'alpha',
  messages: [{ role: 'user', content: 'Count to five.' }],
  stream: true,
  think: false,
})
const pieces = []
for await (const piece of stream) pieces.push(piece)
check(pieces.length > 1, `a streamed chat comes in pieces: ${pieces.length}`)
check(pieces.at(-1).done && !pieces.slice(0, -1).some((piece) => piece.done), 'only the last piece is done')
check(pieces.map((piece) => piece.message.content).join(''), 'a streamed chat has content')
check(!pieces.some((piece) => piece.message.thinking), 'think: false gives no thinking')
report.streamed_pieces = pieces.length

const readFile = {
  type: 'function',
  function: {
    name: 'read_file',
    description: 'Reads a file.',
    parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
  },
}
const withTools = await client.chat({
  model: 'alpha',
  messages: [{ role: 'user', content: 'Read src/lib.rs.' }],
  tools: [readFile],
})
check(withTools.done, 'a chat with tools ends done')
for (const call of withTools.message.tool_calls ?? []) {
  check(typeof call.function.arguments === 'object', `tool arguments are an object: ${JSON.stringify(call)}`)
}

await expectError(
  () => client.chat({ model: 'plain', messages: [{ role: 'user', content: 'hi' }], tools: [readFile] }),
  400,
  'does not support tools',
  'tools on a model without the capability',
)
await expectError(
  () => client.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
  404,
  'not found',
  'a missing model',
)

const unload = await client.generate({ model: 'alpha', prompt: '', keep_alive: 0 })
check(unload.done && unload.done_reason === 'unload', `an unload says so: ${JSON.stringify(unload)}`)

console.log(JSON.stringify(report))
