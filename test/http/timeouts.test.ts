import t, { type Test } from 'tap'
import { createConnection, type Socket } from 'node:net'
import { build } from '../helpers/build.js'
import { deadline } from '../helpers/deadline.js'

/** The app listening on a real port, with the given HTTP time-outs. */
async function listening(t: Test, env: Record<string, string>): Promise<number> {
  const app = await build(t, { env })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

interface SlowClient {
  socket: Socket
  received: () => string
  /** Resolves true when the server closes the connection, false if the test's generous guard ran out first. */
  closed: Promise<boolean>
}

function connect(t: Test, port: number, guardMs = deadline(60_000)): SlowClient {
  const socket = createConnection({ host: '127.0.0.1', port })
  let data = ''
  socket.on('data', (chunk) => (data += chunk.toString()))
  socket.on('error', () => {})
  const closed = new Promise<boolean>((resolve) => {
    const guard = setTimeout(() => resolve(false), guardMs)
    socket.on('close', () => {
      clearTimeout(guard)
      resolve(true)
    })
  })
  t.teardown(() => socket.destroy())
  return { socket, received: () => data, closed }
}

/** Writes one byte of `text` every `everyMs` until the connection closes or the text runs out; returns what was sent. */
function trickle(client: SlowClient, text: string, everyMs: number): () => number {
  let sent = 0
  const timer = setInterval(() => {
    if (client.socket.destroyed || sent >= text.length) return clearInterval(timer)
    client.socket.write(text[sent++]!)
  }, everyMs)
  client.socket.on('close', () => clearInterval(timer))
  return () => sent
}

const tight = { PDP_HTTP_HEADERS_TIMEOUT_MS: '1000', PDP_HTTP_REQUEST_TIMEOUT_MS: '1000' }

t.test('a body trickled one byte at a time is cut off with a 408 and the connection closed', async (t) => {
  const port = await listening(t, tight)
  const client = connect(t, port)
  const body = JSON.stringify({ subject: { id: 'carol', tenant: 'acme' }, action: 'read', resource: { type: 'documents' }, pad: 'x'.repeat(400) })
  client.socket.write(`POST /decide HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`)
  // 450 bytes at one per 100 ms would take 45 s; the server's bound is 1 s.
  const sent = trickle(client, body, 100)
  t.ok(await client.closed, 'the server closed the connection')
  t.ok(sent() < body.length, `before the body was complete (${sent()} of ${body.length} bytes)`)
  t.match(client.received(), /^HTTP\/1\.1 408 /, 'with a 408')
})

t.test('headers trickled one byte at a time are cut off', async (t) => {
  const port = await listening(t, tight)
  const client = connect(t, port)
  const headers = `GET /healthz HTTP/1.1\r\nHost: pdp\r\nX-Slow: ${'y'.repeat(400)}\r\n\r\n`
  const sent = trickle(client, headers, 100)
  t.ok(await client.closed, 'the server closed the connection')
  t.ok(sent() < headers.length, `before the headers were complete (${sent()} of ${headers.length} bytes)`)
  t.match(client.received(), /^HTTP\/1\.1 408 /)
})

t.test('an idle keep-alive connection is closed after the keep-alive time-out', async (t) => {
  const port = await listening(t, { PDP_HTTP_KEEP_ALIVE_TIMEOUT_MS: '500' })
  const client = connect(t, port)
  client.socket.write('GET /healthz HTTP/1.1\r\nHost: pdp\r\nConnection: keep-alive\r\n\r\n')
  t.ok(await client.closed, 'the server closed the idle connection')
  t.match(client.received(), /^HTTP\/1\.1 200 /, 'after answering the request')
})

t.test('a connection on which nothing moves is closed after the connection time-out', async (t) => {
  // Headers and request bounds far away, so that only the inactivity time-out can act.
  const port = await listening(t, { PDP_HTTP_HEADERS_TIMEOUT_MS: '600000', PDP_HTTP_REQUEST_TIMEOUT_MS: '600000', PDP_HTTP_CONNECTION_TIMEOUT_MS: '500' })
  const client = connect(t, port)
  client.socket.write('POST /decide HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{')
  t.ok(await client.closed, 'the server closed the silent connection')
})

t.test('the headers time-out may not exceed the request time-out', async (t) => {
  const { loadConfig } = await import('../../src/config/config.js')
  t.throws(() => loadConfig({ PDP_HTTP_HEADERS_TIMEOUT_MS: '5000', PDP_HTTP_REQUEST_TIMEOUT_MS: '1000' }), { message: /PDP_HTTP_HEADERS_TIMEOUT_MS: must not exceed/ })
})
