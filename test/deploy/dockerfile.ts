import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/build.js'

/** One Dockerfile instruction: keyword upper-cased, `--flag=value` options split off, the rest as written. */
export interface Instruction {
  keyword: string
  flags: Record<string, string>
  args: string
}

export interface Stage {
  image: string
  name: string | undefined
  instructions: Instruction[]
}

/** Enough of the Dockerfile grammar for this repository's file: comments, `\` continuations, stages. */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (pending === '' && (line === '' || line.startsWith('#'))) continue
    if (line.startsWith('#')) continue
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1).trim() + ' '
      continue
    }
    logical.push((pending + line).trim())
    pending = ''
  }
  if (pending !== '') logical.push(pending.trim())

  const stages: Stage[] = []
  for (const line of logical) {
    const match = /^(\S+)\s*(.*)$/.exec(line)
    if (!match) continue
    const keyword = match[1]!.toUpperCase()
    let rest = match[2]!
    const flags: Record<string, string> = {}
    for (let flag = /^--([a-z-]+)=(\S+)\s*/.exec(rest); flag; flag = /^--([a-z-]+)=(\S+)\s*/.exec(rest)) {
      flags[flag[1]!] = flag[2]!
      rest = rest.slice(flag[0].length)
    }
    if (keyword === 'FROM') {
      const [image, as, name] = rest.split(/\s+/)
      stages.push({ image: image!, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
      continue
    }
    const stage = stages.at(-1)
    if (!stage) throw new Error(`${keyword} before the first FROM`)
    stage.instructions.push({ keyword, flags, args: rest })
  }
  return stages
}

/** The arguments of an exec-form (JSON array) CMD, ENTRYPOINT or HEALTHCHECK CMD. */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args)
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not an exec-form array: ${args}`)
  return parsed as string[]
}

/** ENV instructions of a stage, `KEY=value` pairs (quotes removed). */
export function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const pair of ins.args.match(/[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|\S*)/g) ?? []) {
      const at = pair.indexOf('=')
      env[pair.slice(0, at)] = pair.slice(at + 1).replace(/^"(.*)"$/, '$1')
    }
  }
  return env
}

/** WORKDIR of a stage (the last one set). */
export function workdir(stage: Stage): string {
  const set = stage.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)
  if (!set) throw new Error(`stage ${stage.name ?? stage.image} sets no WORKDIR`)
  return set.args
}

/** Sources and destination of a COPY, shell form. */
export function copyPaths(ins: Instruction): { sources: string[]; dest: string } {
  const parts = ins.args.split(/\s+/)
  return { sources: parts.slice(0, -1), dest: parts.at(-1)! }
}

function segmentPattern(glob: string): RegExp {
  const body = glob
    .split('/')
    .map((segment) =>
      segment === '**'
        ? '.*'
        : segment
            .split('')
            .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
            .join(''),
    )
    .join('/')
  return new RegExp(`^${body}$`)
}

/**
 * Whether `.dockerignore` keeps a path out of the build context: the last pattern that matches the
 * path or one of its parent folders decides, and a `!` pattern lets it back in.
 */
export function dockerIgnores(dockerignore: string, path: string): boolean {
  const rules = dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => (l.startsWith('!') ? { keep: true, pattern: segmentPattern(l.slice(1).replace(/^\/|\/$/g, '')) } : { keep: false, pattern: segmentPattern(l.replace(/^\/|\/$/g, '')) }))
  const segments = path.replace(/^\.\//, '').replace(/\/$/, '').split('/')
  const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'))
  let ignored = false
  for (const rule of rules) {
    if (candidates.some((c) => rule.pattern.test(c))) ignored = !rule.keep
  }
  return ignored
}

export const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
export const DOCKERIGNORE = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
