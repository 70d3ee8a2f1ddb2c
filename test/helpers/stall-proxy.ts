import { createConnection, createServer, type Socket } from 'node:net'
import { deadline } from './deadline.js'

interface TestLike {
  teardown(fn: () => unknown): void
}

export interface StallProxy {
  port: number
  /** Stops forwarding in both directions: connections stay open, bytes are held (a stalled server, as seen by its clients). */
  pause(): void
  /** Delivers what was held, in order, and forwards again. */
  resume(): void
  readonly paused: boolean
  /** Chunks held since the last pause. */
  readonly held: number
}

/** A TCP proxy in front of host:port that the test can stall, so that a real server appears to hang without being touched. */
export async function stallProxy(t: TestLike, host: string, port: number): Promise<StallProxy> {
  let paused = false
  let held: [Socket, Buffer][] = []
  const sockets = new Set<Socket>()
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (paused) held.push([to, chunk])
      else to.write(chunk)
    })
    from.on('close', () => to.destroy())
    from.on('error', () => to.destroy())
  }
  const server = createServer((client) => {
    const upstream = createConnection({ host, port })
    sockets.add(client).add(upstream)
    client.on('close', () => sockets.delete(client))
    upstream.on('close', () => sockets.delete(upstream))
    forward(client, upstream)
    forward(upstream, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    port: (server.address() as { port: number }).port,
    pause() {
      paused = true
    },
    resume() {
      paused = false
      for (const [to, chunk] of held) if (!to.destroyed) to.write(chunk)
      held = []
    },
    get paused() {
      return paused
    },
    get held() {
      return held.length
    },
  }
}

/**
 * Resolves with the work's outcome if it settles while `stillStalled()` holds; a generous guard turns a hang into a
 * failure instead of waiting for the test runner's time-out.
 */
export async function duringStall<T>(work: Promise<T>, stillStalled: () => boolean, guardMs = deadline(60_000)): Promise<{ value: T; duringStall: boolean } | 'hung'> {
  let timer: NodeJS.Timeout | undefined
  const guard = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), guardMs)
  })
  try {
    const outcome = await Promise.race([work.then((value) => ({ value, duringStall: stillStalled() })), guard])
    return outcome
  } finally {
    clearTimeout(timer)
  }
}
