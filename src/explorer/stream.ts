import type { ServerResponse } from 'node:http'
import { matchesFilter, type DecisionLine, type LiveFilter } from './ring.js'

/** A client that stops reading is dropped once this much is waiting for it, rather than buffered without end. */
const MAX_BUFFERED_BYTES = 1 << 20

interface Client {
  response: ServerResponse
  filter: LiveFilter
}

export interface StreamHubOptions {
  max: number
  heartbeatMs: number
  /** Whether the server is draining: streams are then ended, so that clients reconnect to another replica. */
  draining: () => boolean
}

/**
 * The open live-view streams (server-sent events): at most `max` at once, a comment line every `heartbeatMs`
 * so that proxies keep an idle one open, ended when the server drains or closes.
 */
export class StreamHub {
  private readonly clients = new Set<Client>()
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly options: StreamHubOptions) {}

  get open(): number {
    return this.clients.size
  }

  get full(): boolean {
    return this.clients.size >= this.options.max
  }

  /** Takes over the response: headers, the backlog, then every matching decision until the client leaves. */
  add(response: ServerResponse, filter: LiveFilter, backlog: DecisionLine[]): void {
    const client: Client = { response, filter }
    this.clients.add(client)
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx would otherwise buffer the stream and deliver it in lumps.
      'x-accel-buffering': 'no',
    })
    response.write(`retry: ${this.options.heartbeatMs}\n\n`)
    for (const line of backlog) this.send(client, 'decision', line, line.decision_id)
    response.on('close', () => this.remove(client))
    this.timer ??= setInterval(() => this.beat(), this.options.heartbeatMs).unref()
  }

  publish(line: DecisionLine): void {
    for (const client of this.clients) if (matchesFilter(line, client.filter)) this.send(client, 'decision', line, line.decision_id)
  }

  /** An event for every client, whatever its filter (policy reloads). */
  broadcast(event: string, data: unknown): void {
    for (const client of this.clients) this.send(client, event, data)
  }

  private send(client: Client, event: string, data: unknown, id?: string): void {
    const { response } = client
    if (response.writableLength > MAX_BUFFERED_BYTES) {
      response.destroy()
      return
    }
    response.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }

  private beat(): void {
    if (this.options.draining()) {
      this.closeAll()
      return
    }
    for (const client of this.clients) client.response.write(': heartbeat\n\n')
  }

  private remove(client: Client): void {
    this.clients.delete(client)
    if (this.clients.size === 0) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  closeAll(): void {
    for (const client of [...this.clients]) {
      this.clients.delete(client)
      client.response.end()
    }
    clearInterval(this.timer)
    this.timer = undefined
  }
}
