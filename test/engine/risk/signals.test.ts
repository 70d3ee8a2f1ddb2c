import t from 'tap'
import { applyDeviceEvent } from '../../../src/engine/risk/device-trust.js'
import { DEFAULT_RISK_POLICY, parseRiskPolicy } from '../../../src/engine/policy/files/risk.js'
import { riskKeys } from '../../../src/engine/risk/keys.js'
import { HOUR, MINUTE, PLACES, T0, fakeGeo, riskHarness, signal, trusted } from './helpers.js'

const LONDON = '198.51.1.1'
const PARIS = '198.51.1.2'
const SYDNEY = '198.51.1.3'
const CAMBRIDGE = '198.51.1.4'
const PYONGYANG = '198.51.1.5'

t.test('device trust', async (t) => {
  t.test('an unknown device starts neutral and is reported new', async (t) => {
    const h = riskHarness()
    const out = await h.assess({ device: { id: 'phone' }, session: trusted(h.now).session! })
    t.match(signal(out, 'deviceTrust'), { value: { trust: 50, known: false }, contribution: 30, reason: 'new_device' })
    t.equal(out.verdict, 'step_up', '30 points at medium sensitivity is a low step-up')
    t.match(out.stepUp, { level: 'low', methods: ['totp'] })
    t.ok(out.reasons.includes('new_device'))
    const again = await h.assess({ device: { id: 'phone' }, session: trusted(h.now).session! })
    t.match(signal(again, 'deviceTrust'), { value: { known: true }, reason: 'untrusted_device' }, 'the second time it is known')
  })

  t.test('posture raises and lowers trust', async (t) => {
    const h = riskHarness()
    const good = await h.assess(trusted(h.now))
    t.match(signal(good, 'deviceTrust'), { value: { trust: 80, posture: 30 }, contribution: 0 })
    t.equal(good.verdict, 'allow')
    const bad = await h.assess({ device: { id: 'old', managed: false, encrypted: false, osUpToDate: false }, session: trusted(h.now).session! })
    t.match(signal(bad, 'deviceTrust'), { value: { trust: 20 }, contribution: 50 }, 'below 70 and below 40')
  })

  t.test('security events move trust', async (t) => {
    const h = riskHarness()
    await h.assess(trusted(h.now))
    const b = h.store.batch()
    applyDeviceEvent(b, 'alice', 'laptop', 'suspicious_activity', h.policy, h.now)
    applyDeviceEvent(b, 'alice', 'laptop', 'login_failure', h.policy, h.now)
    await b.exec()
    const after = await h.assess(trusted(h.now))
    t.match(signal(after, 'deviceTrust'), { value: { trust: 45 }, contribution: 30 }, '50 - 25 - 10 + 30 posture')
    const c = h.store.batch()
    for (let i = 0; i < 20; i++) applyDeviceEvent(c, 'alice', 'laptop', 'login_success', h.policy, h.now)
    await c.exec()
    const capped = await h.assess(trusted(h.now))
    t.match(signal(capped, 'deviceTrust'), { value: { trust: 100 } }, 'trust never exceeds 100')
  })

  t.test('a request without a device is not trusted more than an unknown device', async (t) => {
    const h = riskHarness()
    const out = await h.assess({ session: trusted(h.now).session! })
    t.match(signal(out, 'deviceTrust'), { value: { trust: 50, device: null }, contribution: 30, reason: 'untrusted_device' })
  })

  t.test('devices are per subject', async (t) => {
    const h = riskHarness()
    await h.assess(trusted(h.now))
    const bob = await h.assess(trusted(h.now), { subjectId: 'bob' })
    t.match(signal(bob, 'deviceTrust'), { value: { known: false } })
  })
})

t.test('impossible travel', async (t) => {
  t.test('London then Sydney a minute later is impossible; a day later it is not', async (t) => {
    const h = riskHarness()
    await h.assess({ ...trusted(h.now), ip: LONDON })
    h.now += MINUTE
    const fast = await h.assess({ ...trusted(h.now), ip: SYDNEY })
    t.match(signal(fast, 'impossibleTravel'), { reason: 'impossible_travel', value: { from: 'GB', to: 'AU' } })
    t.ok(fast.reasons.includes('impossible_travel'))
    t.not(fast.verdict, 'allow')

    const h2 = riskHarness()
    await h2.assess({ ...trusted(h2.now), ip: LONDON })
    h2.now += 24 * HOUR
    const slow = await h2.assess({ ...trusted(h2.now), ip: SYDNEY })
    t.equal(signal(slow, 'impossibleTravel')?.reason, undefined)
    t.notOk(slow.reasons.includes('impossible_travel'))
  })

  t.test('the speed limit is configurable', async (t) => {
    const h = riskHarness(parseRiskPolicy('location: { maxSpeedKmh: 200 }'))
    await h.assess({ ...trusted(h.now), ip: LONDON })
    h.now += HOUR
    const out = await h.assess({ ...trusted(h.now), ip: PARIS })
    t.equal(signal(out, 'impossibleTravel')?.reason, 'impossible_travel', '300 km in an hour is over 200 km/h')
    const h2 = riskHarness()
    await h2.assess({ ...trusted(h2.now), ip: LONDON })
    h2.now += HOUR
    const ok = await h2.assess({ ...trusted(h2.now), ip: PARIS })
    t.equal(signal(ok, 'impossibleTravel')?.reason, undefined, 'but not over the default 900 km/h')
  })

  t.test('two fixes within their accuracy radii never count as travel', async (t) => {
    const h = riskHarness()
    await h.assess({ ...trusted(h.now), ip: LONDON })
    h.now += 1000
    const out = await h.assess({ ...trusted(h.now), ip: CAMBRIDGE })
    t.match(signal(out, 'impossibleTravel'), { value: { distanceKm: 0, speedKmh: 0 } })
    t.equal(out.verdict, 'allow')
  })

  t.test('private and unknown addresses give no location and no travel verdict', async (t) => {
    const h = riskHarness()
    await h.assess({ ...trusted(h.now), ip: LONDON })
    h.now += 1000
    const priv = await h.assess({ ...trusted(h.now), ip: '10.0.0.7' })
    t.equal(signal(priv, 'impossibleTravel'), undefined)
    t.match(signal(priv, 'location'), { value: { country: null, address: 'private' } })
    t.equal(priv.verdict, 'allow', 'an unknown location adds 0.3 location risk, under the first step')
    h.now += 1000
    const back = await h.assess({ ...trusted(h.now), ip: SYDNEY })
    t.equal(signal(back, 'impossibleTravel')?.reason, 'impossible_travel', 'a private address does not erase the trail')
  })

  t.test('unknown addresses are not trusted more than public ones', async (t) => {
    const policy = parseRiskPolicy('location: { unknownLocationRisk: 0.7 }')
    const h = riskHarness(policy)
    const out = await h.assess({ ...trusted(h.now), ip: '192.168.1.1' })
    t.match(signal(out, 'location'), { contribution: 25 }, 'the unknown-location risk is scored like any other')
  })
})

t.test('the trail: the last fix as JSON, read back in any form', async (t) => {
  const readTrail = async (h: ReturnType<typeof riskHarness>) => {
    const batch = h.store.batch()
    const trail = batch.get(riskKeys.lastLocation('alice'))
    await batch.exec()
    return trail.value
  }
  const writeTrail = async (h: ReturnType<typeof riskHarness>, json: string) => {
    const batch = h.store.batch()
    batch.set(riskKeys.lastLocation('alice'), json, HOUR)
    await batch.exec()
  }
  const london = PLACES[LONDON]!

  t.test('the stored text is JSON.stringify of the fix and its time', async (t) => {
    const h = riskHarness()
    await h.assess({ ...trusted(h.now), ip: LONDON })
    h.now += 1234
    const again = await h.assess({ ...trusted(h.now), ip: LONDON })
    t.match(signal(again, 'impossibleTravel'), { value: { from: 'GB', to: 'GB', elapsedSeconds: 1 } }, 'the trail read back')
    t.equal(await readTrail(h), JSON.stringify({ ...london, at: h.now }))
  })

  t.test('a time with a fraction or an exponent is read as JSON reads it; a malformed one is no trail', async (t) => {
    for (const [at, elapsedSeconds] of [[`${T0 - 60_000}.5`, 60], [`${(T0 - 120_000) / 1e12}e12`, 120], ['-0', Math.round(T0 / 1000)]] as const) {
      const h = riskHarness()
      await writeTrail(h, JSON.stringify({ ...london, at: 0 }).replace('"at":0}', `"at":${at}}`))
      const out = await h.assess({ ...trusted(h.now), ip: LONDON })
      t.match(signal(out, 'impossibleTravel'), { value: { from: 'GB', elapsedSeconds } }, `at ${at}`)
    }
    for (const at of ['"x"', '01', '1e999', '', '12,"at":"y"']) {
      const h = riskHarness()
      await writeTrail(h, JSON.stringify({ ...london, at: 0 }).replace('"at":0}', `"at":${at}}`))
      const out = await h.assess({ ...trusted(h.now), ip: LONDON })
      t.equal(signal(out, 'impossibleTravel'), undefined, `at ${at}`)
    }
  })

  t.test('a lookup that changes the object it answers is stored as it is now', async (t) => {
    const place = { ...london }
    const h = riskHarness(DEFAULT_RISK_POLICY, fakeGeo({ [LONDON]: place }))
    await h.assess({ ...trusted(h.now), ip: LONDON })
    Object.assign(place, PLACES[SYDNEY])
    h.now += MINUTE
    const out = await h.assess({ ...trusted(h.now), ip: LONDON })
    t.equal(signal(out, 'impossibleTravel')?.reason, 'impossible_travel', 'London, then Sydney a minute later')
    t.equal(await readTrail(h), JSON.stringify({ ...PLACES[SYDNEY], at: h.now }))
  })
})

t.test('location rules', async (t) => {
  const policy = parseRiskPolicy(`
location:
  highRiskCountries: [KP]
  allowedCountries:
    tenants: { acme: [GB, FR, KP] }
    subjects: { bob: [GB] }
`)
  t.test('outside the tenant\'s countries is a hard deny', async (t) => {
    const h = riskHarness(policy)
    const out = await h.assess({ ...trusted(h.now), ip: SYDNEY })
    t.equal(out.verdict, 'deny')
    t.equal(out.reasons[0], 'country_restricted')
    const other = await h.assess({ ...trusted(h.now), ip: SYDNEY }, { tenant: 'globex' })
    t.not(other.verdict, 'deny', 'a tenant without a list may be anywhere')
  })
  t.test('a subject\'s own list overrides the tenant\'s', async (t) => {
    const h = riskHarness(policy)
    const out = await h.assess({ ...trusted(h.now), ip: PARIS }, { subjectId: 'bob' })
    t.equal(out.reasons[0], 'country_restricted')
    const alice = await h.assess({ ...trusted(h.now), ip: PARIS })
    t.equal(alice.verdict, 'allow')
  })
  t.test('a high-risk country asks for a step-up', async (t) => {
    const h = riskHarness(policy)
    const out = await h.assess({ ...trusted(h.now), ip: PYONGYANG })
    t.match(signal(out, 'location'), { reason: 'high_risk_location', contribution: 40 })
    t.equal(out.verdict, 'step_up')
    t.ok(out.reasons.includes('high_risk_location'))
  })
  t.test('the first use of a country raises location risk; the very first country does not', async (t) => {
    const h = riskHarness(parseRiskPolicy('location: { newCountryRisk: 0.7 }'))
    const first = await h.assess({ ...trusted(h.now), ip: LONDON })
    t.equal(signal(first, 'location')?.reason, undefined)
    h.now += 10 * HOUR
    const second = await h.assess({ ...trusted(h.now), ip: PARIS })
    t.match(signal(second, 'location'), { reason: 'new_country', contribution: 25 })
    h.now += 10 * HOUR
    const back = await h.assess({ ...trusted(h.now), ip: LONDON })
    t.equal(signal(back, 'location')?.reason, undefined, 'a country seen before is not new')
  })
})

t.test('authentication age', async (t) => {
  const h = riskHarness()
  const at = (hoursAgo: number) => ({ device: trusted(h.now).device!, session: { authTime: Math.floor(h.now / 1000 - hoursAgo * 3600) } })
  t.match(signal(await h.assess(at(7.9)), 'authAge'), { contribution: 0 })
  t.match(signal(await h.assess(at(8.1)), 'authAge'), { contribution: 10, reason: 'stale_authentication' })
  t.match(signal(await h.assess(at(24.1)), 'authAge'), { contribution: 25, reason: 'stale_authentication' })
  const none = await h.assess({ device: trusted(h.now).device! })
  t.match(signal(none, 'authAge'), { value: null, contribution: 10, reason: 'no_session' })
})

t.test('behaviour', async (t) => {
  const quiet = parseRiskPolicy('behaviour: { warmupDecisions: 5, burstMinimum: 5, burstRatio: 4 }')
  t.test('a new subject only builds its baseline', async (t) => {
    const h = riskHarness(quiet)
    for (let i = 0; i < 5; i++) {
      const out = await h.assess(trusted(h.now), { resourceType: `type-${i}` })
      t.match(signal(out, 'behaviour'), { value: { anomaly: 0 }, contribution: 0, detail: /learning/ })
      h.now += 10 * MINUTE
    }
  })
  t.test('a burst far above the usual rate is an anomaly', async (t) => {
    const h = riskHarness(quiet)
    for (let i = 0; i < 10; i++) {
      await h.assess(trusted(h.now))
      h.now += 10 * MINUTE
    }
    let last
    for (let i = 0; i < 8; i++) last = await h.assess(trusted(h.now))
    t.match(signal(last!, 'behaviour'), { value: { rate: 1 }, reason: 'behavior_anomaly', contribution: 30 })
    t.ok(last!.reasons.includes('behavior_anomaly'))
  })
  t.test('the usual rate is not an anomaly', async (t) => {
    const h = riskHarness(quiet)
    for (let i = 0; i < 12; i++) {
      const out = await h.assess(trusted(h.now))
      if (i >= 6) t.match(signal(out, 'behaviour'), { value: { rate: 0, hour: 0, newResource: 0 }, contribution: 0 })
      h.now += 5 * MINUTE
    }
  })
  t.test('an unusual hour and a new resource type add up', async (t) => {
    const h = riskHarness(quiet)
    for (let i = 0; i < 10; i++) {
      await h.assess(trusted(h.now))
      h.now += 10 * MINUTE
    }
    h.now = T0 + 14 * HOUR
    const odd = await h.assess(trusted(h.now), { resourceType: 'payroll' })
    t.match(signal(odd, 'behaviour'), { value: { hour: 1, newResource: 1, rate: 0 } })
    t.equal(signal(odd, 'behaviour')!.contribution, 20, '1 - 0.5 × 0.7 = 0.65: over 0.5')
  })
})

t.test('sensitivity scales the score', async (t) => {
  const h = riskHarness(parseRiskPolicy('sensitivity: { resources: { system.config: { default: critical } } }'))
  const ctx = { device: { id: 'phone' }, session: trusted(h.now).session! }
  const medium = await h.assess(ctx)
  t.match(medium.assessment, { score: 30, sensitivity: 'medium', multiplier: 1 })
  const low = await h.assess({ ...ctx, sensitivity: 'low' })
  t.match(low.assessment, { score: 21, sensitivity: 'low', multiplier: 0.7 })
  t.equal(low.verdict, 'allow')
  const critical = await h.assess(ctx, { resourceType: 'system.config', action: 'update' })
  t.match(critical.assessment, { score: 48, sensitivity: 'critical', multiplier: 1.6 }, '30 (trust 50) × 1.6')
})

t.test('the scoring table: levels, methods and the deny threshold', async (t) => {
  const h = riskHarness()
  const session = () => ({ authTime: Math.floor(h.now / 1000) - 60, amr: ['pwd'] })
  const withTrust = async (posture: Record<string, boolean>, extra: object = {}) =>
    h.assess({ device: { id: `d-${Math.random()}`, ...posture }, session: session(), ...extra })
  const cases: [string, () => Promise<Awaited<ReturnType<typeof h.assess>>>, number, string | undefined][] = [
    ['trust 80: nothing', () => withTrust({ managed: true, encrypted: true, osUpToDate: true }), 0, undefined],
    ['trust 65: +30 → low', () => withTrust({ managed: true }), 30, 'low'],
    ['trust 30: +50 → medium', () => withTrust({ managed: false, encrypted: false, osUpToDate: true }), 50, 'medium'],
    ['trust 30 at high sensitivity: 65 → medium', () => withTrust({ managed: false, encrypted: false, osUpToDate: true }, { sensitivity: 'high' }), 65, 'medium'],
    ['trust 20 at critical: 80 → high', () => withTrust({ managed: false, encrypted: false, osUpToDate: false }, { sensitivity: 'critical' }), 80, 'high'],
  ]
  for (const [name, run, score, level] of cases) {
    const out = await run()
    t.equal(out.assessment.score, score, `${name}: score`)
    t.equal(out.stepUp?.level, level, `${name}: level`)
    t.equal(out.verdict, level ? 'step_up' : 'allow', `${name}: verdict`)
  }
  const medium = await withTrust({ managed: false, encrypted: false, osUpToDate: true })
  t.same(medium.stepUp, { level: 'medium', methods: ['totp', 'sms'], maxAge: 900, acrValues: ['aal2'] })
  const high = await withTrust({ managed: false, encrypted: false, osUpToDate: false }, { sensitivity: 'critical' })
  t.same(high.stepUp, { level: 'high', methods: ['webauthn', 'admin_approval'], maxAge: 300, acrValues: ['aal3', 'phrh'] }, 'device trust under 30 adds admin approval')

  const denyAt = riskHarness(parseRiskPolicy('thresholds: { high: 55, deny: 60 }'))
  const denied = await denyAt.assess({ device: { id: 'x', managed: false, encrypted: false }, session: { authTime: Math.floor(T0 / 1000) }, sensitivity: 'high' })
  t.equal(denied.verdict, 'deny')
  t.equal(denied.reasons[0], 'risk_too_high')
  t.equal(DEFAULT_RISK_POLICY.thresholds.deny, 100)
})

t.test('step-up satisfaction', async (t) => {
  const highRisk = { device: { id: 'tablet', managed: false, encrypted: false, osUpToDate: false }, sensitivity: 'critical' as const }
  t.test('a fresh hardware-key authentication satisfies a high step-up', async (t) => {
    const h = riskHarness()
    const asked = await h.assess({ ...highRisk, session: { authTime: Math.floor(h.now / 1000) - 3600, amr: ['pwd'] } })
    t.equal(asked.verdict, 'step_up')
    const ok = await h.assess({ ...highRisk, session: { authTime: Math.floor(h.now / 1000) - 30, amr: ['pwd', 'hwk'] } })
    t.equal(ok.verdict, 'allow')
    t.equal(ok.reasons[0], 'step_up_satisfied')
  })
  t.test('a method too weak for the level does not', async (t) => {
    const h = riskHarness()
    const out = await h.assess({ ...highRisk, session: { authTime: Math.floor(h.now / 1000) - 30, amr: ['pwd', 'sms'] } })
    t.equal(out.verdict, 'step_up')
  })
  t.test('an authentication older than maxAge does not', async (t) => {
    const h = riskHarness()
    const out = await h.assess({ ...highRisk, session: { authTime: Math.floor(h.now / 1000) - 301, amr: ['hwk'] } })
    t.equal(out.verdict, 'step_up')
    t.match(out.stepUp, { maxAge: 300 })
  })
  t.test('a satisfied step-up is remembered on the device, for that level, until it expires', async (t) => {
    const h = riskHarness()
    const mediumCtx = { device: { id: 'phone' }, session: { authTime: Math.floor(h.now / 1000) - 7200, amr: ['pwd'] }, sensitivity: 'high' as const }
    const first = await h.assess(mediumCtx)
    t.equal(first.verdict, 'step_up')
    const satisfied = await h.assess({ ...mediumCtx, session: { authTime: Math.floor(h.now / 1000) - 10, amr: ['otp'] } })
    t.equal(satisfied.verdict, 'allow')
    h.now += HOUR
    const later = await h.assess(mediumCtx)
    t.equal(later.verdict, 'allow', 'not asked again on this device')
    t.equal(later.reasons[0], 'step_up_satisfied')
    t.ok(signal(later, 'deviceTrust')!.value, 'and the device gained trust')
    const other = await h.assess({ ...mediumCtx, device: { id: 'other-phone' } })
    t.equal(other.verdict, 'step_up', 'another device is asked')
    h.now += 9 * HOUR
    const expired = await h.assess({ ...mediumCtx, session: { authTime: Math.floor(h.now / 1000) - 7200, amr: ['pwd'] } })
    t.equal(expired.verdict, 'step_up', 'remembered for rememberSeconds only')
  })
})
