// The alarm bar and summary screen in a real browser (Debian's Chromium via playwright-core)
// against the real `stator serve --demo`, at the panel's 1280 x 400: an alarm raised by a write
// to the simulator flashes in the session bar, and an operator acknowledges it on the summary
// screen (with confirm); the server then reports it acknowledged by that operator.
//
//   STATOR_BIN=/path/to/stator node --test tests/browser/alarms.test.mjs
//
// Needs the UI built (ui/dist) and a headless stator binary. Screenshots: tests/artifacts/screenshots/.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, findBinary, freePort, waitFor } from '../support/util.mjs'
import { addUser, openPanel, serveDemo, teardown } from './fixture.mjs'

const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots')
const PASSWORD = 'operator-pass-1'
const ALARM = 'eco_cutoff_3'

let bin, tmp, cfgPath, dbPath, base, server, browser, page
const pageErrors = []

async function api(method, p, token, body) {
  const res = await fetch(base + p, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

describe('alarms on the panel', () => {
  before(async () => {
    bin = findBinary()
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), 'build the UI first')
    fs.mkdirSync(SHOTS, { recursive: true })
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-alarms-'))
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    cfg.broadcast_interval_seconds = 0.5
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${port}`, allow_remote_writes: true }
    // One alarm under test: without calibrations there are no `<id>.cal_due` alarms (a sensor
    // never calibrated is overdue).
    delete cfg.calibration
    cfg.alarms = [
      { id: ALARM, tag: 'eco_solar/CMD_Instant_Cutoff[3]', condition: 'equals', value: true, priority: 'urgent', message: { en: 'Instant cutoff 3 active', de: 'Schnellabschaltung 3 aktiv' } },
    ]
    cfgPath = path.join(tmp, 'config.json')
    dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
    addUser(bin, cfgPath, dbPath, 'op', 'operator', 'eco_solar,isiada', PASSWORD)
    server = await serveDemo(bin, cfgPath, dbPath, base)
    ;({ browser, page } = await openPanel(base, pageErrors, { timeout: 15000 }))
  })

  after(() => teardown(browser, server, tmp))

  it('raises, flashes, and is acknowledged on the summary screen', async () => {
    const { body: lg } = await api('POST', '/api/login', null, { username: 'op', password: PASSWORD })
    await waitFor('eco_solar connected', async () => {
      const s = (await api('GET', '/api/snapshot', lg.token)).body
      return s.plcs.some((p) => p.id === 'eco_solar' && p.status === 'CONNECTED')
    }, 60000, 250)

    await page.getByTestId('login-screen').waitFor()
    await page.getByTestId('mode-password').click()
    await page.getByTestId('login-username').fill('op')
    await page.getByTestId('login-password').fill(PASSWORD)
    await page.getByTestId('login-submit').click()
    const banner = page.getByTestId('alarm-banner')
    await banner.waitFor()
    assert.equal(await banner.getAttribute('data-unack'), 'false')

    // Raise: the cutoff element is writable in the simulator.
    const w = await api('POST', '/api/write', lg.token, { plc: 'eco_solar', node: 'CMD_Instant_Cutoff[3]', value: true })
    assert.equal(w.status, 200, JSON.stringify(w.body))
    await page.getByTestId('alarm-count-urgent').waitFor()
    assert.match(await page.getByTestId('alarm-count-urgent').innerText(), /U\s*1/)
    assert.equal(await banner.getAttribute('data-unack'), 'true')
    assert.match(await page.getByTestId('alarm-newest').innerText(), /Instant cutoff 3 active/)
    assert.equal((await page.getByTestId('park-card-eco_solar').getByTestId('alarm-count').innerText()).replace(/\s+/g, ' ').trim().split(' ').pop(), '1')
    await page.screenshot({ path: path.join(SHOTS, 'alarm-bar.png') })

    await banner.click()
    await page.getByTestId('alarms-screen').waitFor()
    const row = page.getByTestId(`alarm-${ALARM}`)
    assert.equal(await row.getAttribute('data-state'), 'unack')
    await page.screenshot({ path: path.join(SHOTS, 'alarm-summary.png') })
    await page.getByTestId(`ack-${ALARM}`).click()
    await page.getByTestId('ack-confirm').waitFor()
    await page.getByTestId('ack-confirm-yes').click()
    await waitFor('row acknowledged', async () => (await row.getAttribute('data-state')) === 'acked', 10000, 100)
    await waitFor('banner stops flashing', async () => (await banner.getAttribute('data-unack')) === 'false', 10000, 100)

    const list = (await api('GET', '/api/alarms', lg.token)).body.alarms
    const a = list.find((x) => x.id === ALARM)
    assert.equal(a.state, 'acked')
    assert.equal(a.acked_by, 'op')
    // Tap → the park screen, where the tag in alarm carries the alarm's priority.
    await row.locator('button.what').click()
    await page.getByTestId('park-screen').waitFor()
    const marker = page.getByTestId('tag-row-CMD_Instant_Cutoff').getByTestId('tag-alarm')
    assert.equal(await marker.getAttribute('data-priority'), 'urgent')
    assert.equal((await marker.innerText()).trim(), 'U')
    // The journal: newest first, the acknowledgement by op on top of the raise.
    await page.getByTestId('alarm-banner').click()
    await page.getByTestId('open-log').click()
    await page.getByTestId('journal-table').waitFor()
    await waitFor('journal rows', async () => (await page.getByTestId('journal-table').locator('tr').count()) >= 2, 10000, 100)
    const first = await page.getByTestId('journal-table').locator('tr').first().innerText()
    assert.match(first, /eco_cutoff_3\s+Acknowledged\s+op/)
    await page.screenshot({ path: path.join(SHOTS, 'alarm-journal.png') })
    const csv = page.waitForEvent('download')
    await page.getByTestId('log-csv').click()
    assert.equal((await csv).suggestedFilename(), 'alarm-journal.csv')
    // From the summary, ✉ writes a message about the alarm, to its park's channel.
    await page.getByTestId('log-back').click()
    await page.getByTestId('alarms-screen').waitFor()
    await page.getByTestId(`msg-${ALARM}`).click()
    await page.getByTestId('messages-screen').waitFor()
    assert.equal(new URL(page.url()).hash, `#/messages/alarm/${ALARM}`)
    await page.getByTestId('msg-alarm').waitFor()
    assert.match(await page.getByTestId('thread-title').innerText(), /^Channel /)
    await page.getByTestId('msg-input').fill('Cutoff 3 checked on site')
    await page.getByTestId('msg-send').click()
    const sent = page.getByTestId('thread').locator('.bubble').filter({ hasText: 'Cutoff 3 checked on site' })
    await sent.waitFor()
    assert.match(await sent.locator('.meta').innerText(), new RegExp(`△ ${ALARM}`))
    await page.screenshot({ path: path.join(SHOTS, 'alarm-message.png') })
    // No horizontal overflow at 1280 x 400.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
    assert.equal(overflow, false)
    assert.deepEqual(pageErrors, [])
  })
})
