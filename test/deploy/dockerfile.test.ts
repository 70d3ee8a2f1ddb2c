import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join, posix } from 'node:path'
import { ROOT } from '../helpers/build.js'
import { DOCKERFILE, DOCKERIGNORE, copyPaths, dockerIgnores, execForm, parseDockerfile, stageEnv, workdir } from './dockerfile.js'

const stages = parseDockerfile(DOCKERFILE)
const runtime = stages.at(-1)!
const build = stages.find((s) => s.name === 'build')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } }

t.test('the parser reads stages, flags, continuations and exec forms', async (t) => {
  const parsed = parseDockerfile('# c\nFROM a:1 AS one\nWORKDIR /w\nRUN x \\\n  # inner comment\n  && y\nFROM b:2\nCOPY --from=one /w/out ./out\nCMD ["n", "s.js"]\n')
  t.same(
    parsed.map((s) => [s.image, s.name]),
    [
      ['a:1', 'one'],
      ['b:2', undefined],
    ],
  )
  t.equal(parsed[0]!.instructions[1]!.args, 'x && y')
  t.same(parsed[1]!.instructions[0], { keyword: 'COPY', flags: { from: 'one' }, args: '/w/out ./out' })
  t.same(execForm(parsed[1]!.instructions[1]!.args), ['n', 's.js'])
})

t.test('.dockerignore matching: the last matching pattern wins, parents count', async (t) => {
  const rules = '*\n!src\n!package.json\nsrc/secret.ts\n'
  t.equal(dockerIgnores(rules, '.git'), true)
  t.equal(dockerIgnores(rules, 'node_modules/x/index.js'), true)
  t.equal(dockerIgnores(rules, 'src/app.ts'), false)
  t.equal(dockerIgnores(rules, 'src/secret.ts'), true)
  t.equal(dockerIgnores(rules, 'package.json'), false)
})

t.test('multi-stage, both stages on the same exact Node 20 release', async (t) => {
  t.ok(build, 'a stage named build')
  t.ok(stages.length >= 2, 'at least two stages')
  const images = new Set(stages.map((s) => s.image))
  t.equal(images.size, 1, `one base image, got ${[...images].join(', ')}`)
  const image = stages[0]!.image
  // An exact tag (major.minor.patch and a Debian variant); a digest may follow, a placeholder may not.
  const pinned = /^node:(20)\.(\d+)\.(\d+)-[a-z]+(?:-slim)?(?:@sha256:[0-9a-f]{64})?$/.exec(image)
  t.ok(pinned, `pinned exact Node 20 tag: ${image}`)
  const [, , minor] = pinned!
  const [, wantMinor] = /^>=20\.(\d+)$/.exec(pkg.engines.node) ?? []
  t.ok(wantMinor !== undefined && Number(minor) >= Number(wantMinor), `satisfies engines.node ${pkg.engines.node}`)
})

t.test('the build stage installs everything and compiles; the runtime stage installs production dependencies only', async (t) => {
  const runs = (stage: typeof runtime) => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args)
  const buildRuns = runs(build!)
  t.ok(buildRuns.some((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit=dev')), 'npm ci with dev dependencies')
  t.ok(buildRuns.some((r) => /\bnpm run build\b/.test(r)), 'npm run build')

  const install = runs(runtime).find((r) => /\bnpm ci\b/.test(r))
  t.ok(install, 'runtime npm ci')
  t.match(install!, /--omit=dev/)
  // "prepare" runs tsc, a dev dependency that the runtime stage does not have.
  t.match(install!, /--ignore-scripts/)

  const fromBuild = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from === build!.name)
  t.equal(fromBuild.length, 1)
  const { sources } = copyPaths(fromBuild[0]!)
  t.same(sources, [posix.join(workdir(build!), tsconfig.compilerOptions.outDir)], "the build stage's tsc output")
})

t.test('every path the Dockerfile copies from the context exists and is in the build context', async (t) => {
  let copies = 0
  for (const stage of stages) {
    for (const ins of stage.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from === undefined)) {
      for (const source of copyPaths(ins).sources) {
        copies++
        t.ok(existsSync(join(ROOT, source)), `${source} exists`)
        t.notOk(dockerIgnores(DOCKERIGNORE, source), `${source} is not excluded by .dockerignore`)
      }
    }
  }
  t.ok(copies >= 5, 'package.json, package-lock.json, tsconfig.json, src, policies')
})

t.test('.dockerignore keeps out what must never reach an image', async (t) => {
  for (const path of ['.git', '.git/config', 'node_modules', 'node_modules/tap/package.json', 'dist/src/server.js', 'test/server.test.ts', '.env', 'scratch/notes.txt', 'helm/pdp/values.yaml']) {
    t.ok(dockerIgnores(DOCKERIGNORE, path), `${path} ignored`)
  }
})

t.test('runtime: non-root numeric user, 0.0.0.0, exposed port, policies at PDP_POLICY_DIR', async (t) => {
  const users = runtime.instructions.filter((i) => i.keyword === 'USER')
  t.ok(users.length > 0, 'sets USER')
  const user = users.at(-1)!.args
  // Numeric, so that Kubernetes can verify runAsNonRoot without reading /etc/passwd.
  const numeric = /^(\d+)(?::(\d+))?$/.exec(user)
  t.ok(numeric, `numeric USER, got ${user}`)
  t.not(Number(numeric![1]), 0, 'not root')
  t.not(Number(numeric![2] ?? 1), 0, 'not the root group')
  const userAt = runtime.instructions.lastIndexOf(users.at(-1)!)
  t.notOk(
    runtime.instructions.slice(userAt).some((i) => i.keyword === 'RUN'),
    'nothing runs as the service user at build time',
  )

  const env = stageEnv(runtime)
  t.equal(env.HOST, '0.0.0.0')
  const exposed = runtime.instructions.filter((i) => i.keyword === 'EXPOSE').map((i) => i.args.replace(/\/tcp$/, ''))
  t.same(exposed, [env.PORT], 'EXPOSE is the PORT the process listens on')
  t.equal(env.PDP_DECISION_LOG ?? 'stdout', 'stdout', 'the decision log writes nothing to the filesystem')

  const policyCopy = runtime.instructions.find((i) => i.keyword === 'COPY' && copyPaths(i).sources.includes('policies'))
  t.ok(policyCopy, 'example policies baked in')
  t.equal(posix.resolve(workdir(runtime), copyPaths(policyCopy!).dest), env.PDP_POLICY_DIR, 'copied where PDP_POLICY_DIR points')
})

t.test('CMD starts the compiled server with node itself; HEALTHCHECK needs only node', async (t) => {
  const cmd = runtime.instructions.filter((i) => i.keyword === 'CMD').at(-1)
  t.ok(cmd)
  const argv = execForm(cmd!.args)
  t.equal(argv[0], 'node', 'not npm: npm start would rebuild and write to its cache')
  t.equal(argv[1], posix.join(tsconfig.compilerOptions.outDir, 'src/server.js'), 'the compiled src/server.ts')
  t.ok(existsSync(join(ROOT, 'src/server.ts')))

  const healthchecks = runtime.instructions.filter((i) => i.keyword === 'HEALTHCHECK')
  t.equal(healthchecks.length, 1)
  const check = healthchecks[0]!
  t.match(check.flags, { interval: /^\d+s$/, timeout: /^\d+s$/ })
  t.match(check.args, /^CMD \[/)
  const probe = execForm(check.args.replace(/^CMD\s+/, ''))
  t.same(probe.slice(0, 2), ['node', '-e'])
  t.match(probe[2]!, /\/healthz/)
  t.notMatch(check.args, /\b(curl|wget)\b/)
})
