import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { livePdp } from '../helpers/live-pdp.js'

/**
 * /docs in a real browser (Debian's Chromium, driven by playwright-core), as an operator opens it: over plain http,
 * under a host name that is not loopback. A CSP with upgrade-insecure-requests made the browser fetch the assets over
 * https and render a blank page there; any CSP violation or script error is a failure.
 */
const CHROMIUM = '/usr/bin/chromium'
const HOST = 'pdp.test'

if (!existsSync(CHROMIUM)) {
  const message = `${CHROMIUM} is not installed (Debian's chromium package; .ci/run installs it)`
  if (process.env.CI === 'true') t.fail(message)
  else t.skip(message, () => {})
} else {
  t.test('/docs renders the operations and the Authorize button over http on a non-loopback host name', async (t) => {
    const pdp = await livePdp(t)
    const port = new URL(pdp.url).port
    const profile = mkdtempSync(join(tmpdir(), 'pdp-chromium-'))
    t.teardown(() => rmSync(profile, { recursive: true, force: true }))
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        // pdp.test resolves to the loopback address the PDP listens on; the browser still sees the host name pdp.test.
        `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
      ],
    })
    t.teardown(() => browser.close())
    const page = browser.pages()[0] ?? (await browser.newPage())
    const problems: string[] = []
    // CSP violations reach the console as errors; a violation event is reported too, in case a build words them differently.
    // (Script text: the tests are compiled without the DOM's types.)
    await page.addInitScript({
      content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI))",
    })
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`)
    })
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`))

    const response = await page.goto(`http://${HOST}:${port}/docs`, { waitUntil: 'load' })
    t.equal(response?.status(), 200)
    await page.locator('.opblock').first().waitFor({ state: 'visible' })
    await page.locator('button.authorize').waitFor({ state: 'visible' })

    const paths = await page.locator('.opblock-summary-path').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-path')))
    t.ok(paths.includes('/decide'), 'POST /decide is listed')
    t.ok(paths.some((p) => p?.startsWith('/admin/')), 'the control plane is listed')
    t.ok(await page.locator('button.authorize').isVisible(), 'Authorize is offered (security schemes)')
    t.ok(
      pdp.requests.every((r) => r.method === 'GET'),
      'the page only fetched things',
    )
    t.ok(pdp.requests.some((r) => r.url.startsWith('/docs/json')), 'the document was fetched over http from the PDP itself')
    t.match(page.url(), new RegExp(`^http://${HOST}:${port}/docs`), 'no upgrade to https')
    t.same(problems, [], 'no CSP violation, script error or failed request')

    // The listeners do catch a violation: an inline script is outside script-src 'self'.
    const violation = page.waitForEvent('console', { predicate: (m) => m.type() === 'error' && /Content Security Policy|CSP violation/.test(m.text()) })
    await page.evaluate("document.body.append(Object.assign(document.createElement('script'), { textContent: 'window.inlineRan = true' }))")
    t.match((await violation).text(), /script-src/, 'a violation would have failed the test')
    t.equal(await page.evaluate('window.inlineRan'), undefined, 'and the inline script did not run')
  })
}
