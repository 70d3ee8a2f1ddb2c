import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'

interface TestLike {
  teardown(fn: () => unknown): void
}

export type HeaderList = [string, string][]

export interface RawResponse {
  status: number
  headers: HeaderList
  body: string
  ms: number
  /** The caller's own time-out fired before an answer came. */
  timedOut: boolean
  /** The connection failed or closed without an answer. */
  error?: string
}

/**
 * One HTTP/1.1 request written byte for byte (the path exactly as given, no normalisation or escaping, which
 * node's http client would refuse or change), read until the server closes the connection.
 */
export async function rawRequest(
  port: number,
  request: { method: string; target: string; headers: HeaderList; body?: string },
  timeoutMs: number,
): Promise<RawResponse> {
  const started = performance.now()
  const socket = connect({ host: '127.0.0.1', port })
  const chunks: Buffer[] = []
  let error: string | undefined
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    socket.destroy()
  }, timeoutMs)
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', (err) => {
    error = err.message
  })
  const body = request.body ?? ''
  const lines = [`${request.method} ${request.target} HTTP/1.1`, `Host: 127.0.0.1:${port}`]
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`)
  const hasLength = headerValues(request.headers, 'content-length').length > 0
  if (!hasLength && (body !== '' || ['POST', 'PUT', 'PATCH'].includes(request.method))) lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  lines.push('Connection: close', '', '')
  // write, not end: a half-closed connection reads as a client that went away (NGINX answers 499).
  socket.on('connect', () => socket.write(Buffer.concat([Buffer.from(lines.join('\r\n'), 'utf8'), Buffer.from(body)])))
  // Not events.once: it would reject on the 'error' that comes before 'close' (a refused connection is an answer here).
  await new Promise((resolve) => socket.on('close', resolve))
  clearTimeout(timer)
  const ms = performance.now() - started
  const raw = Buffer.concat(chunks)
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) return { status: 0, headers: [], body: '', ms, timedOut, error: error ?? 'no answer' }
  const [statusLine = '', ...headerLines] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const headers = headerLines.map((l) => {
    const colon = l.indexOf(':')
    return [l.slice(0, colon).trim(), l.slice(colon + 1).trim()] as [string, string]
  })
  const result: RawResponse = { status: Number(statusLine.split(' ')[1]), headers, body: raw.subarray(end + 4).toString('utf8'), ms, timedOut }
  if (error !== undefined) result.error = error
  return result
}

export const headerValues = (headers: HeaderList, name: string) =>
  headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v)

async function listen(t: TestLike, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const sockets = new Set<Socket>()
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return (server.address() as AddressInfo).port
}

export interface UpstreamRequest {
  method: string
  target: string
  headers: HeaderList
}

/**
 * The API behind the gateway: records every request exactly as it arrived on the wire (method, raw target,
 * every header line in order, duplicates included) and answers 200.
 */
export async function echoUpstream(t: TestLike): Promise<{ port: number; requests: UpstreamRequest[] }> {
  const requests: UpstreamRequest[] = []
  const server = createServer((socket) => {
    let buffered = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      // A kept-alive connection may carry several requests; answer each once its head and body are in.
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end < 0) return
        const [requestLine = '', ...lines] = buffered.subarray(0, end).toString('latin1').split('\r\n')
        const headers = lines.map((l) => {
          const colon = l.indexOf(':')
          return [l.slice(0, colon).trim(), l.slice(colon + 1).trim()] as [string, string]
        })
        const length = Number(headerValues(headers, 'content-length')[0] ?? 0)
        const chunked = headerValues(headers, 'transfer-encoding').some((v) => /chunked/i.test(v))
        let consumed = end + 4 + length
        if (chunked) {
          const last = buffered.indexOf('0\r\n\r\n', end + 4)
          if (last < 0) return
          consumed = last + 5
        }
        if (buffered.length < consumed) return
        buffered = buffered.subarray(consumed)
        const [method = '', target = ''] = requestLine.split(' ')
        requests.push({ method, target, headers })
        const body = method === 'HEAD' ? '' : 'upstream'
        const close = requestLine.endsWith('HTTP/1.0') || headerValues(headers, 'connection').some((v) => /close/i.test(v))
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n${close ? 'Connection: close\r\n' : ''}\r\n${body}`)
        if (close) socket.end()
      }
    })
  })
  return { port: await listen(t, server), requests }
}

/** A PDP that accepts connections and never answers. */
export async function frozenServer(t: TestLike): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => {})
    socket.resume()
  })
  return listen(t, server)
}

/** A loopback port on which nothing listens (taken from the kernel, then released). */
export async function deadPort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

export const freePort = deadPort

/** Resolves once something accepts TCP connections on the port; rejects after the deadline. */
export async function waitForPort(port: number, deadlineMs: number, alive: () => string | undefined): Promise<void> {
  const until = performance.now() + deadlineMs
  for (;;) {
    const dead = alive()
    if (dead !== undefined) throw new Error(dead)
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port })
      s.on('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (performance.now() > until) throw new Error(`nothing listened on ${port} within ${deadlineMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
