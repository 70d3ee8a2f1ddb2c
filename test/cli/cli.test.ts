import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runCli } from '../../src/cli/commands.js'
import { EXAMPLE_POLICIES, ROOT, auditCapture, build, manualClock, partialGeoipData, policyCopy, trustedContext } from '../helpers/build.js'
import { nodeArgsFor } from '../helpers/dist.js'

async function cliWith(env: NodeJS.ProcessEnv, ...argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, env)
  return { code, out: out.join('\n'), err: err.join('\n') }
}

const cli = (...argv: string[]) => cliWith(process.env, ...argv)

async function edit(dir: string, file: string, change: (text: string) => string): Promise<void> {
  await writeFile(join(dir, file), change(await readFile(join(dir, file), 'utf8')))
}

t.test('validate and test pass on the bundled policy', async (t) => {
  const validate = await cli('validate', EXAMPLE_POLICIES)
  t.equal(validate.code, 0, validate.err)
  t.match(validate.out, /valid \(policy version [0-9a-f]{16}, .* 4 response rules, 6 test suites with \d+ cases\)/)
  const test = await cli('test', EXAMPLE_POLICIES)
  t.equal(test.code, 0, test.out)
  t.match(test.out, /\n(\d+) passed, 0 failed \(6 suites/)
  t.notMatch(test.out, /FAIL/)
})

t.test("GEODATADIR: test, explain and plan read geolocation where the server does, and say so when it is unusable", async (t) => {
  const relative = await cliWith({ GEODATADIR: 'geodata' }, 'test', EXAMPLE_POLICIES)
  t.equal(relative.code, 1)
  t.equal(relative.err, 'pdp: GEODATADIR: must be an absolute path, got "geodata"')

  const { dir, complete } = await partialGeoipData(t)
  const request = join(dir, 'request.json')
  await writeFile(request, JSON.stringify({ subject: { id: 'alice', tenant: 'acme' }, action: 'read', resource: { type: 'documents' }, context: { ip: '81.2.69.142' } }))
  for (const argv of [['test', EXAMPLE_POLICIES], ['explain', request, '--policies', EXAMPLE_POLICIES], ['plan', request, '--policies', EXAMPLE_POLICIES]]) {
    const missing = await cliWith({ GEODATADIR: dir }, ...argv)
    t.equal(missing.code, 1, `${argv[0]}: stops`)
    t.match(missing.err, /^pdp: geoip-lite's data file .*geoip-city6\.dat is unusable: ENOENT/, `${argv[0]}: names the missing file`)
  }

  await complete()
  const tested = await cliWith({ GEODATADIR: dir }, 'test', EXAMPLE_POLICIES)
  t.equal(tested.code, 0, tested.out)
  const explained = await cliWith({ GEODATADIR: dir }, 'explain', request, '--policies', EXAMPLE_POLICIES, '--json')
  t.equal(explained.code, 0, explained.err)
  t.match(explained.out, /"country": "GB"/, 'located from the directory given')
})

t.test('validate names the file, line and problem of a broken copy', async (t) => {
  const broken: [string, string, (s: string) => string, RegExp][] = [
    ['policy.csv', 'a rule with a missing field', (s) => s.replace('p, manager, *, users, read, true, allow', 'p, manager, *, users, read, allow'), /policy\.csv:12: /],
    ['response.yaml', 'an unknown action', (s) => s.replace('      - lockout: { durationSeconds: 900 }', '      - lockdown: { durationSeconds: 900 }'), /response\.yaml:\d+: .*unknown key "lockdown"/],
    ['risk.yaml', 'a threshold that is not a number', (s) => s.replace('low: 25 ', 'low: many '), /risk\.yaml:\d+: thresholds\.low: must be a number \(got "many"\)/],
    ['routes.yaml', 'a misspelt key in a route', (s) => s.replace('action: create', 'act: create'), /routes\.yaml:16: routes\.1\.act: unknown key "act"/],
    ['tests/risk.yaml', 'a test case with an impossible verdict', (s) => s.replace('expect: { decision: allow, reasons: [policy_allow] }', 'expect: { decision: maybe }'), /tests\/risk\.yaml:\d+: cases\.\d+\.expect\.decision: must be one of allow, deny, step_up/],
  ]
  for (const [file, name, change, message] of broken) {
    const dir = await policyCopy(t)
    await edit(dir, file, change)
    const res = await cli('validate', dir)
    t.equal(res.code, 1, name)
    t.match(res.err, message, name)
    t.equal(res.out, '', `${name}: nothing claims it is valid`)
  }
})

t.test('validate refuses conditions and matchers that are not pure data, naming file, line and token', async (t) => {
  const rule = 'p, manager, *, users, read, true, allow'
  const conditions: [string, RegExp][] = [
    ['r.sub.roles.push("admin") > 0', /calls the method "push"/],
    ['r.sub.id.constructor.constructor("return 1")()', /reads "constructor"/],
    ['r.sub.id["constructor"] != null', /reads "constructor"/],
    ["r.obj.attributes['__proto__'] == null", /reads "__proto__"/],
    ['r.obj.attributes.prototype == null', /reads "prototype"/],
    ['r.sub.attributes.level++ > 0', /uses "\+\+"/],
    ['r.sub.attributes.level-- > 0', /uses "--"/],
    ['r.sub.attributes.level = 3', /uses "="/],
    ['r.sub.attributes.level += 1', /uses "\+="/],
    ['r.sub.attributes.level ||= 1', /uses "\|\|="/],
    ['this.x == 1', /reads "this"/],
    ['eval("true")', /calls "eval", which is not one of Casbin's built-in functions/],
    ['process.exit() == 1', /refers to unknown name "process"/],
  ]
  for (const [condition, token] of conditions) {
    const dir = await policyCopy(t)
    await edit(dir, 'policy.csv', (s) => s.replace(rule, rule.replace(', true,', `, ${condition},`)))
    const res = await cli('validate', dir)
    t.equal(res.code, 1, condition)
    t.match(res.err, /policy\.csv:12: condition /, `${condition}: file and line`)
    t.match(res.err, token, `${condition}: the offending token`)
    t.equal(res.out, '', `${condition}: nothing claims it is valid`)
  }
  const dir = await policyCopy(t)
  await edit(dir, 'model.conf', (s) => s.replace('r.obj.type == p.obj', 'r.sub.roles.push(p.sub) > 0 && r.obj.type == p.obj'))
  const res = await cli('validate', dir)
  t.equal(res.code, 1)
  t.match(res.err, /model\.conf:\d+: matcher calls the method "push"/, 'the matcher is held to the same rule')
  // Built-in functions, operators, literals and `in` stay allowed.
  const pure = await policyCopy(t)
  // (An in list holding a comma cannot be a condition: Casbin's list rewriting breaks it once spliced into the matcher.)
  await edit(pure, 'policy.csv', (s) =>
    s.replace(rule, 'p, manager, *, users, read, "keyMatch(r.obj.id, ""/users/*"") && !(r.env.hour < 6)", allow\np, manager, *, users, update, !(r.env.hour < 6) && r.sub.attributes.tier in r.obj.attributes.tiers, allow'),
  )
  const ok = await cli('validate', pure)
  t.equal(ok.code, 0, ok.err)
})

t.test('test reports each failing case with its file, line and difference, and exits 1', async (t) => {
  const dir = await policyCopy(t)
  // Managers lose the user directory: the suites that rely on it must say so.
  await edit(dir, 'policy.csv', (s) => s.replace('p, manager, *, users, read, true, allow\n', ''))
  const res = await cli('test', dir)
  t.equal(res.code, 1)
  t.match(res.out, /FAIL {2}.*tests\/permissions-manager\.yaml:\d+ {2}manager reads the user directory\n {8}decision: want allow, got deny/)
  t.match(res.out, /\d+ passed, [1-9]\d* failed/)
})

t.test('test without suites is an error, not a silent pass', async (t) => {
  const dir = await policyCopy(t, join(ROOT, 'test/fixtures/policies/deny-override'))
  const res = await cli('test', dir)
  t.equal(res.code, 1)
  t.match(res.err, /no test suites/)
})

t.test('explain prints the verdict, matched rules, roles and the risk breakdown', async (t) => {
  const dir = await policyCopy(t)
  const request = join(dir, 'request.json')
  const at = Date.parse('2026-03-01T12:00:00Z')
  await writeFile(request, JSON.stringify({ subject: { id: 'alice', tenant: 'acme' }, action: 'update', resource: { type: 'system.config' }, context: { device: { id: 'new-phone' } } }))
  const res = await cli('explain', request, '--policies', dir, '--at', '2026-03-01T12:00:00Z')
  t.equal(res.code, 0, res.err)
  t.match(res.out, /^decision: step_up \(step_up_required, .*policy_allow\)/)
  t.match(res.out, /effective roles: admin, manager, employee in domain acme/)
  t.match(res.out, /policy\.csv:22 +p, admin, \*, system\.config, update, true, allow/)
  t.match(res.out, /risk: score 64 \(medium\), sensitivity critical ×1\.6/)
  t.match(res.out, /deviceTrust +\+30 +new_device/)
  t.match(res.out, /step-up: level medium, methods totp, sms/)
  const json = await cli('explain', request, '--policies', dir, '--at', new Date(at).toISOString(), '--json')
  t.match(JSON.parse(json.out), { decision: 'step_up', explanation: { domain: 'acme' } })

  await writeFile(request, '{ not json')
  const bad = await cli('explain', request, '--policies', dir)
  t.equal(bad.code, 1)
  t.match(bad.err, /request\.json: not valid JSON/)
  const missing = await cli('explain', join(dir, 'nope.json'), '--policies', dir)
  t.match(missing.err, /no such file/)
})

t.test('plan prints which resources of a type the subject may act on, as a readable filter', async (t) => {
  const dir = await policyCopy(t)
  const request = join(dir, 'plan.json')
  await writeFile(request, JSON.stringify({ subject: { id: 'bob', tenant: 'acme', attributes: { team: 'blue' } }, action: 'read', resource: { type: 'documents' } }))
  const res = await cli('plan', request, '--policies', dir, '--at', '2026-03-01T12:00:00Z')
  t.equal(res.code, 0, res.err)
  t.match(res.out, /^plan: conditional \(step_up_required, .*policy_allow\)/)
  t.match(res.out, /step-up first: level low, methods totp/, 'no device and no session: risk asks for a step-up, as a decision would')
  t.match(res.out, /filter: \(resource\.attributes\.owner == "bob" OR \(resource\.attributes\.team EXISTS AND resource\.attributes\.team == "blue"\)\)/)
  const json = await cli('plan', request, '--policies', dir, '--json')
  t.match(JSON.parse(json.out), { plan: 'conditional', filter: { op: 'or' } })

  await writeFile(request, JSON.stringify({ subject: { id: 'alice', tenant: 'acme' }, action: 'read', resource: { type: 'documents' } }))
  t.match((await cli('plan', request, '--policies', dir)).out, /^plan: always_allowed/)
  await writeFile(request, JSON.stringify({ subject: { id: 'carol', tenant: 'acme' }, action: 'read', resource: {} }))
  const untyped = await cli('plan', request, '--policies', dir)
  t.equal(untyped.code, 1)
  t.match(untyped.err, /resource\.type must be a string/)
})

t.test('replay lists every logged verdict a candidate policy would change', async (t) => {
  const clock = manualClock()
  const capture = auditCapture()
  const app = await build(t, { now: clock.now, auditStream: capture.stream })
  const context = trustedContext(clock.now())
  const ask = (id: string, action: string, resource: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/decide', payload: { subject: { id, tenant: 'acme' }, action, resource, context } })
  await ask('bob', 'read', { type: 'users' })
  await ask('carol', 'create', { type: 'documents' })
  await ask('carol', 'read', { type: 'users' })
  await app.inject({ method: 'POST', url: '/decide', payload: { token: 'not.a.token', action: 'read', resource: { type: 'users' } } })
  const dir = await policyCopy(t)
  const log = join(dir, 'decisions.log')
  await writeFile(log, `${capture.lines.map((l) => JSON.stringify(l)).join('\n')}\nnot json\n`)

  const same = await cli('replay', log, '--policies', EXAMPLE_POLICIES)
  t.equal(same.code, 0)
  t.match(same.out, /4 decisions: 0 would change, 3 unchanged, 1 decided before the policy \(not comparable\), 1 unreadable lines/)

  // The candidate gives employees the user directory and takes document creation away.
  await edit(dir, 'policy.csv', (s) => s.replace('p, employee, *, documents, create, true, allow', 'p, employee, *, users, read, true, allow'))
  const changed = await cli('replay', log, '--policies', dir, '--fail-on-change')
  t.equal(changed.code, 1)
  t.match(changed.out, /carol create documents: allow → deny \(no_matching_policy\)/)
  t.match(changed.out, /carol read users: deny → allow by policy, then risk as before by policy\.csv:8/)
  t.match(changed.out, /4 decisions: 2 would change, 1 unchanged, 1 decided before the policy/)
})

t.test('the pdp binary runs as a program and exits with the result', async (t) => {
  const run = promisify(execFile)
  const ok = await run(process.execPath, [...(await nodeArgsFor('cli/main')), 'validate', EXAMPLE_POLICIES], { cwd: ROOT })
  t.match(ok.stdout, /valid/)
  const dir = await policyCopy(t)
  await edit(dir, 'model.conf', (s) => s.replace('[matchers]', '[matcherz]'))
  const failed = await run(process.execPath, [...(await nodeArgsFor('cli/main')), 'validate', dir], { cwd: ROOT }).catch((e: { code: number; stderr: string }) => e)
  t.equal((failed as { code: number }).code, 1)
  t.match((failed as { stderr: string }).stderr, /model\.conf/)
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  t.equal(pkg.bin.pdp, 'dist/src/cli/main.js', 'npx pdp runs the compiled entry')
})

t.test('validate checks request.yaml and the request fields it maps, with file and line', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['sub: subject.name\n', 'a request value the PDP does not have', /request\.yaml:1: sub: must be a request value: .* \(got "subject\.name"\)/],
    ['sub: subject.id\nuser: subject.id\n', 'a field the model does not define', /request\.yaml:2: the model's request_definition has no field "user"/],
    ['obj: resource.attributes.__proto__\n', 'a step to a prototype', /request\.yaml:1: obj: must be a request value: .* \(got "resource\.attributes\.__proto__"\)/],
    ['- sub\n', 'not a map', /request\.yaml:1: must be a mapping \(got a list\)/],
  ]
  for (const [text, name, message] of cases) {
    const dir = await policyCopy(t)
    await writeFile(join(dir, 'request.yaml'), text)
    const res = await cli('validate', dir)
    t.equal(res.code, 1, name)
    t.match(res.err, message, name)
  }
  const dir = await policyCopy(t)
  await edit(dir, 'model.conf', (s) => s.replace('r = sub, dom, obj, act, env', 'r = sub, dom, obj, act, env, thing').replace('r.obj.type == p.obj', 'r.thing == p.obj'))
  const unmapped = await cli('validate', dir)
  t.match(unmapped.err, /model\.conf:\d+: request field "r\.thing" is not one the PDP supplies/, 'a field of its own needs request.yaml')
  // The bundled conditions read r.sub and r.obj as objects, so those are declared; dom, act and env are guessed.
  await writeFile(join(dir, 'request.yaml'), 'sub: subject\nobj: resource\nthing: resource.type\n')
  const mapped = await cli('validate', dir)
  t.equal(mapped.code, 0, `with request.yaml it loads: ${mapped.err}`)
})

t.test('validate says which evaluator answers, and why when it is not the indexed one', async (t) => {
  const indexed = await cli('validate', EXAMPLE_POLICIES)
  t.match(indexed.out, /evaluator indexed,/)
  t.notMatch(indexed.out, /node-casbin/)
  const dir = await policyCopy(t)
  await edit(dir, 'model.conf', (s) => s.replace(/^m = (.*)$/m, 'm = eval(p.cond) && $1').replace(/ && eval\(p\.cond\)$/m, ''))
  const fallback = await cli('validate', dir)
  t.equal(fallback.code, 0, fallback.err)
  t.match(fallback.out, /evaluator casbin,/)
  t.match(fallback.out, /evaluated by node-casbin, not the indexed evaluator \(matcher_eval\): eval\(\.\.\.\) is not the last term/)
})
