import t from 'tap'
import { invalidTokenChallenge, stepUpChallenge } from '../../src/http/challenge.js'
import { parseChallenge } from './parse-challenge.js'

t.test('RFC 9470 step-up challenge', async (t) => {
  const header = stepUpChallenge({ acrValues: ['phr', 'phrh'], maxAge: 300 })
  t.equal(
    header,
    'Bearer error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required", acr_values="phr phrh", max_age="300"',
  )
  t.same(parseChallenge(header), {
    scheme: 'Bearer',
    params: {
      error: 'insufficient_user_authentication',
      error_description: 'A stronger or more recent authentication is required',
      acr_values: 'phr phrh',
      max_age: '300',
    },
  })
})

t.test('quoted strings are escaped and control characters dropped', async (t) => {
  const header = invalidTokenChallenge('bad "token"\\\r\nInjected: yes')
  t.equal(header, 'Bearer error="invalid_token", error_description="bad \\"token\\"\\\\Injected: yes"')
  t.equal(parseChallenge(header).params.error_description, 'bad "token"\\Injected: yes')
})

t.test('no acr values: only max_age', async (t) => {
  t.notMatch(stepUpChallenge({ acrValues: [], maxAge: 59.9 }), /acr_values/)
  t.match(stepUpChallenge({ acrValues: [], maxAge: 59.9 }), /max_age="59"$/)
})
