import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { ROOT } from './build.js'

/** The real process, as `npm start` runs it (through tsx here, so no build is needed). */
export function start(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Record<string, unknown>[] = []
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>
    try {
      line = JSON.parse(text)
    } catch {
      return
    }
    lines.push(line)
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    }
  })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const waitFor = (match: (l: Record<string, unknown>) => boolean) => {
    const seen = lines.find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise<Record<string, unknown>>((resolve) => waiters.push({ match, resolve }))
  }
  return { child, lines, waitFor, stderr: () => stderr }
}

export async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  const [code] = await once(child, 'exit')
  return code as number | null
}


/** Starts the server and resolves with its base URL once it listens. */
export async function listening(env: Record<string, string>): Promise<ReturnType<typeof start> & { base: string }> {
  const p = start(env)
  const line = await Promise.race([
    p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at')),
    exitOf(p.child).then((code) => {
      throw new Error(`the server exited (${code}) before listening: ${p.stderr()}`)
    }),
  ])
  return { ...p, base: String(line.msg).replace('Server listening at ', '') }
}
