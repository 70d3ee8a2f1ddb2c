import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { ROOT } from './build.js'
import { deadline } from './deadline.js'
import { nodeArgsFor } from './dist.js'

/** A start takes one to two CPU-seconds; this guard on each awaited log line only names a hang. */
const LINE_DEADLINE_MS = deadline(120_000)

/** The real process, as `npm start` runs it (dist/ when it is current, else the sources through tsx). */
export async function start(env: Record<string, string>) {
  const child = spawn(process.execPath, await nodeArgsFor('server'), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Record<string, unknown>[] = []
  type Waiter = { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void; reject: (e: Error) => void }
  const waiters: Waiter[] = []
  const settle = (w: Waiter) => waiters.splice(waiters.indexOf(w), 1)
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>
    try {
      line = JSON.parse(text)
    } catch {
      return
    }
    lines.push(line)
    for (const w of waiters.filter((w) => w.match(line))) {
      settle(w)
      w.resolve(line)
    }
  })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  let closed = false
  child.on('close', (code, signal) => {
    closed = true
    for (const w of [...waiters]) {
      settle(w)
      w.reject(new Error(`the process ended (${code ?? signal}) before the expected line; stderr: ${stderr}`))
    }
  })
  /** The first stdout JSON line, logged before or after the call, that matches; rejects if the process ends first. */
  const waitFor = (match: (l: Record<string, unknown>) => boolean) => {
    const seen = lines.find(match)
    if (seen) return Promise.resolve(seen)
    if (closed) return Promise.reject(new Error(`the process had ended before the expected line; stderr: ${stderr}`))
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const guard = setTimeout(() => {
        settle(waiter)
        reject(new Error(`no expected line after ${LINE_DEADLINE_MS} ms; stderr: ${stderr}`))
      }, LINE_DEADLINE_MS)
      const waiter: Waiter = {
        match,
        resolve: (line) => {
          clearTimeout(guard)
          resolve(line)
        },
        reject: (error) => {
          clearTimeout(guard)
          reject(error)
        },
      }
      waiters.push(waiter)
    })
  }
  return { child, lines, waitFor, stderr: () => stderr }
}

export async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  const [code] = await once(child, 'exit')
  return code as number | null
}

/** Starts the server and resolves with its base URL once it listens. */
export async function listening(env: Record<string, string>): Promise<Awaited<ReturnType<typeof start>> & { base: string }> {
  const p = await start(env)
  const line = await p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
  return { ...p, base: String(line.msg).replace('Server listening at ', '') }
}
