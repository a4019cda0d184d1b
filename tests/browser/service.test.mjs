// The service area in a real browser (Debian's Chromium via playwright-core) against the real
// `stator serve --demo`, at the panel's 1280 x 400: a serviceman puts a park in service (the
// banner appears), runs a two-point calibration of the simulator's P1 pressure sensor on the
// numeric pad to a pass, finds the record (and downloads its certificate), opens diagnostics and
// pings the PLC, checks the certificate expiry and verifies the audit chain (ok, then broken after
// a row is rewritten in the file), and ends service mode. An operator is offered no Service entry at all.
//
// The reference pressure is what a serviceman's calibrator would apply: the simulator's writable
// `P1_Applied_bar`, written through the server's own write path.
//
//   STATOR_BIN=/path/to/stator node --test tests/browser/service.test.mjs
//
// Needs the UI built (ui/dist) and a headless stator binary. Screenshots: tests/artifacts/screenshots/.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, findBinary, freePort, waitFor } from '../support/util.mjs'
import { VIEWPORT, addUser as addUserCli, openPanel, serveDemo, teardown } from './fixture.mjs'

const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots')
const PASSWORD = 'service-pass-1'
const PARK = 'eco_solar'
const CAL = 'eco_p1'

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

function addUser(name, role) {
  addUserCli(bin, cfgPath, dbPath, name, role, 'eco_solar,isiada', PASSWORD)
}

/** The raw counts the simulator's P1 sensor reads at `bar` (its gain and offset error, 27648 = full scale). */
const rawFor = (bar) => Math.round(((bar * 1.02 + 0.1) / 10) * 27648)

/** Applies a reference pressure and waits until the sensor's raw value has settled on it. */
async function applyReference(token, bar) {
  const w = await api('POST', '/api/write', token, { plc: PARK, node: 'P1_Applied_bar', value: bar })
  assert.equal(w.status, 200, JSON.stringify(w.body))
  await waitFor(`raw value at ${bar} bar`, async () => {
    const s = (await api('GET', '/api/snapshot', token)).body
    const raw = s.plcs.find((p) => p.id === PARK)?.nodes.find((n) => n.name === 'Pressure_P1_raw')
    return raw && Math.abs(raw.value - rawFor(bar)) <= 2
  }, 15000, 100)
}

async function login(p, user) {
  await p.getByTestId('login-screen').waitFor()
  await p.getByTestId('mode-password').click()
  await p.getByTestId('login-username').fill(user)
  await p.getByTestId('login-password').fill(PASSWORD)
  await p.getByTestId('login-submit').click()
  await p.getByTestId('session-bar').waitFor()
}

async function typeOnPad(text) {
  for (const k of text) await page.getByTestId('numpad').locator(`[data-key="${k}"]`).click()
}

/** Nothing sticks out of the 1280 x 400 window, and the screen's own area does not scroll. */
async function assertFits(what) {
  const [w, h, mainScroll, mainClient] = await page.evaluate(() => {
    const m = document.querySelector('main')
    return [document.documentElement.scrollWidth, document.documentElement.scrollHeight, m?.scrollHeight ?? 0, m?.clientHeight ?? 0]
  })
  if (!(w <= 1280 && h <= 400 && mainScroll <= mainClient)) await page.screenshot({ path: path.join(SHOTS, `service-overflow.png`) })
  assert.ok(w <= 1280 && h <= 400, `${what}: page ${w} x ${h}`)
  assert.ok(mainScroll <= mainClient, `${what}: screen content ${mainScroll} px in ${mainClient} px`)
}

describe('service mode, calibration and diagnostics on the panel', () => {
  before(async () => {
    bin = findBinary()
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), 'build the UI first')
    fs.mkdirSync(SHOTS, { recursive: true })
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-service-'))
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    // The repository's config.json is what `serve --demo` runs with: it configures eco_p1 (P1).
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    assert.ok(cfg.calibration.some((c) => c.id === CAL), `config.json configures ${CAL}`)
    cfg.broadcast_interval_seconds = 0.5
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${port}`, allow_remote_writes: true }
    cfgPath = path.join(tmp, 'config.json')
    dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
    addUser('sam', 'serviceman')
    addUser('op', 'operator')
    server = await serveDemo(bin, cfgPath, dbPath, base)
    ;({ browser, page } = await openPanel(base, pageErrors, { context: { acceptDownloads: true } }))
  })

  after(() => teardown(browser, server, tmp))

  it('puts a park in service, calibrates P1 to a pass, shows the record and diagnostics', async () => {
    const { body: lg } = await api('POST', '/api/login', null, { username: 'sam', password: PASSWORD })
    assert.ok(lg?.token, JSON.stringify(lg))
    await waitFor(`${PARK} connected`, async () => {
      const s = (await api('GET', '/api/snapshot', lg.token)).body
      return s.plcs.some((p) => p.id === PARK && p.status === 'CONNECTED')
    }, 60000, 250)

    await login(page, 'sam')
    // Service mode: start with a reason typed on the on-screen keyboard's prompt.
    assert.equal(await page.getByTestId('service-banner').count(), 0)
    await page.getByTestId('nav-service').click()
    await page.getByTestId('service-screen').waitFor()
    const row = page.getByTestId(`service-park-${PARK}`)
    assert.equal(await row.getAttribute('data-active'), 'false')
    await page.getByTestId(`service-start-${PARK}`).click()
    await page.getByTestId('prompt').waitFor()
    await page.getByTestId('prompt-input').fill('P1 calibration')
    await page.getByTestId('prompt-input').press('Enter')
    await page.getByTestId('service-banner').waitFor()
    const banner = await page.getByTestId('service-banner').innerText()
    assert.match(banner, new RegExp(`${PARK}.*sam.*P1 calibration`))
    await waitFor('row in service', async () => (await row.getAttribute('data-active')) === 'true', 5000, 100)
    assert.equal(await page.getByTestId(`service-end-${PARK}`).isEnabled(), true)
    await assertFits('service screen')
    await page.screenshot({ path: path.join(SHOTS, 'service-mode.png') })

    // Calibration: only the park in service can be calibrated.
    await page.getByTestId('svc-tab-calibration').click()
    await page.getByTestId(`cal-item-${CAL}`).waitFor()
    assert.equal(await page.getByTestId(`cal-item-${CAL}`).getAttribute('data-due'), 'overdue', 'never calibrated')
    assert.equal(await page.getByTestId('cal-start-isiada_p1').isDisabled(), true)
    assert.match(await page.getByTestId('cal-why-isiada_p1').innerText(), /in service first/)
    await page.getByTestId(`cal-start-${CAL}`).click()
    const screen = page.getByTestId('calibration-screen')
    await waitFor('step 1', async () => (await screen.getAttribute('data-step')) === 'ref1', 10000, 100)

    // Reference 1: 2 bar. A reference outside the range cannot be captured.
    await applyReference(lg.token, 2)
    await waitFor('raw value shown', async () => Math.abs(Number(await page.getByTestId('cal-raw').innerText()) - rawFor(2)) <= 3, 10000, 100)
    await typeOnPad('12')
    assert.match(await page.getByTestId('cal-parse-error').innerText(), /0.*10/)
    assert.equal(await page.getByTestId('cal-capture').isDisabled(), true)
    await page.getByTestId('numpad').locator('[data-key="clear"]').click()
    await typeOnPad('2')
    await assertFits('calibration, reference 1')
    await page.screenshot({ path: path.join(SHOTS, 'calibration-point.png') })
    await page.getByTestId('cal-capture').click()
    await waitFor('step 2', async () => (await screen.getAttribute('data-step')) === 'ref2', 15000, 100)
    const p1 = await page.getByTestId('cal-point-1').innerText()
    const raw1 = Number(/raw ([\d.]+)/.exec(p1)?.[1])
    assert.ok(Math.abs(raw1 - rawFor(2)) <= 2, p1)

    // Reference 2: 8 bar, then the review.
    await applyReference(lg.token, 8)
    await typeOnPad('8')
    await page.getByTestId('cal-capture').click()
    await waitFor('review', async () => (await screen.getAttribute('data-step')) === 'review', 15000, 100)
    // The sensor reads 2 % high plus 0.1 bar: as found +0.26 bar at 8 bar.
    const found = Number((await page.getByTestId('cal-as-found').innerText()).replace('−', '-').replace(/[^\d.+-]/g, ''))
    assert.ok(Math.abs(found - 0.26) < 0.02, `as found ${found}`)
    assert.match(await page.getByTestId('cal-expected').innerText(), /0\.00\d\d bar/)
    assert.match(await page.getByTestId('cal-coef').innerText(), /→/)
    await assertFits('calibration review')
    await page.screenshot({ path: path.join(SHOTS, 'calibration-review.png') })

    // Apply: select → confirm → execute, then the verdict.
    await page.getByTestId('cal-apply').click()
    await page.getByTestId('cal-confirm').waitFor()
    assert.match(await page.getByTestId('cal-confirm').innerText(), /eco_solar\/Pressure_P1_bar/)
    await page.getByTestId('cal-confirm-yes').click()
    await page.getByTestId('cal-result').waitFor({ timeout: 20000 })
    assert.equal(await page.getByTestId('cal-result').getAttribute('data-pass'), 'true', await page.getByTestId('cal-result').innerText())
    assert.match(await page.getByTestId('cal-result').innerText(), /PASS/)
    const recordText = await page.getByTestId('cal-record').innerText()
    const n = Number(/(\d+)/.exec(recordText)?.[1])
    assert.ok(n >= 1, recordText)
    await assertFits('calibration result')
    await page.screenshot({ path: path.join(SHOTS, 'calibration-done.png') })
    // The PLC reads the reference now (checked on the server's snapshot, not the screen).
    const snap = (await api('GET', '/api/snapshot', lg.token)).body
    const value = snap.plcs.find((p) => p.id === PARK).nodes.find((x) => x.name === 'Pressure_P1_bar').value
    assert.ok(Math.abs(value - 8) <= 0.05, `P1 reads ${value}`)

    // The list now shows it calibrated (due in a year).
    await page.getByTestId('cal-back').click()
    await waitFor('due ok', async () => (await page.getByTestId(`cal-item-${CAL}`).getAttribute('data-due')) === 'ok', 10000, 100)

    // Records: the new record, passed, with its certificate.
    await page.getByTestId('svc-tab-records').click()
    const rec = page.getByTestId(`rec-${n}`)
    await rec.waitFor()
    assert.equal(await rec.getAttribute('data-pass'), 'true')
    assert.match(await rec.innerText(), new RegExp(`${CAL}[\\s\\S]*sam`))
    const dl = page.waitForEvent('download')
    await page.getByTestId(`rec-cert-${n}`).click()
    const file = await dl
    assert.equal(file.suggestedFilename(), `calibration-${n}.html`)
    const html = fs.readFileSync(await file.path(), 'utf8')
    assert.match(html, new RegExp(CAL))
    assert.match(html, /Pressure_P1_bar/)
    await assertFits('records')
    await page.screenshot({ path: path.join(SHOTS, 'calibration-records.png') })

    // Diagnostics: the park's connection, a ping, the panel's figures.
    await page.getByTestId('svc-tab-diagnostics').click()
    const card = page.getByTestId(`diag-park-${PARK}`)
    await card.waitFor()
    assert.equal(await card.getAttribute('data-state'), 'CONNECTED')
    assert.match(await card.getByTestId('diag-since').innerText(), /Connected since \d{4}-\d\d-\d\d/)
    // The report's own status read is a measured round trip.
    assert.match(await page.getByTestId(`diag-rtt-${PARK}`).innerText(), /^[\d.]+ ms \/ [\d.]+ ms \/ [\d.]+ ms$/)
    assert.match(await page.getByTestId(`diag-server-${PARK}`).innerText(), /Running/)
    await page.getByTestId(`diag-ping-${PARK}`).click()
    await page.getByTestId(`diag-ping-result-${PARK}`).waitFor()
    assert.match(await page.getByTestId(`diag-ping-result-${PARK}`).innerText(), /Round trip [\d.]+ ms, server Running/)
    assert.match(await page.getByTestId('diag-clients').innerText(), /[1-9]\d* browser/)
    // sam's browser session and the API session that applies the references.
    assert.ok(Number(await page.getByTestId('diag-sessions').innerText()) >= 2)
    assert.match(await page.getByTestId('diag-disk').innerText(), /[\d.]+ (KiB|MiB|GiB|TiB)/)
    // The simulator's certificate (sent on the security-None endpoint too): valid, days left.
    const cert = page.getByTestId(`diag-cert-${PARK}`)
    assert.match(await cert.innerText(), /valid until \d{4}-\d\d-\d\d.*\(\d+ days left\)/)
    assert.ok(Number(await cert.getAttribute('data-days')) > 0)
    assert.match(await page.getByTestId('diag-cpu').innerText(), /[\d.]+ s/)
    // The audit chain: verified on demand, ok; broken after someone rewrites a row in the file.
    const audit = page.getByTestId('diag-audit')
    await page.getByTestId('diag-audit-verify').click()
    await waitFor('audit chain ok', async () => (await audit.getAttribute('data-state')) === 'ok' && !(await audit.innerText()).includes('verifying'), 15000, 100)
    assert.match(await audit.innerText(), /intact \(\d+ rows\)/)
    const [w] = await page.evaluate(() => [document.documentElement.scrollWidth])
    assert.ok(w <= 1280, `diagnostics: page ${w} px wide`)
    await page.screenshot({ path: path.join(SHOTS, 'diagnostics.png') })
    const tamper = spawnSync('python3', ['-c', `import sqlite3
c = sqlite3.connect(${JSON.stringify(dbPath)}, timeout=10)
c.executescript("DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE id = 3;")
c.close()`])
    assert.equal(tamper.status, 0, String(tamper.stderr))
    await page.getByTestId('diag-audit-verify').click()
    await waitFor('audit chain broken', async () => (await audit.getAttribute('data-state')) === 'broken', 15000, 100)
    assert.match(await page.getByTestId('diag-audit-error').innerText(), /row 3/)
    assert.match(await audit.innerText(), /BROKEN/)

    // End service mode: the banner goes.
    await page.getByTestId('svc-tab-service').click()
    await page.getByTestId(`service-end-${PARK}`).click()
    await waitFor('banner gone', async () => (await page.getByTestId('service-banner').count()) === 0, 10000, 100)
    assert.equal(await row.getAttribute('data-active'), 'false')
    assert.deepEqual(pageErrors, [])
  })

  it('offers an operator no Service entry', async () => {
    const ctx = await browser.newContext({ viewport: VIEWPORT })
    const p = await ctx.newPage()
    await p.goto(base + '/')
    await login(p, 'op')
    await p.getByTestId('nav-logbook').waitFor()
    assert.equal(await p.getByTestId('nav-service').count(), 0)
    await ctx.close()
  })
})
