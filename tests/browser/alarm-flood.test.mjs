// The panel during an alarm flood, in a real browser (Debian's Chromium via playwright-core)
// against the real `stator serve --demo`, at the panel's 1280 x 400: 1,000 alarm definitions on
// the simulator's writable `SP_Ramp_Rate_kW_s` (limits 100 … 1099), so one write raises all 1,000
// in the same second and another clears them. The main thread's long tasks are recorded with a
// `PerformanceObserver({type: 'longtask'})` (tasks over 50 ms) on the overview (session bar) while
// the flood arrives, then on the alarm summary screen while it opens with 1,000 alarms and while
// all 1,000 return to normal. The figures go to docs/performance.md ("Alarms").
//
//   STATOR_BIN=/path/to/stator node --test tests/browser/alarm-flood.test.mjs
//
// Needs the UI built (ui/dist) and a headless stator binary. `LONGTASK_BOUND_MS` (default 50) is
// the bound asserted for the longest task.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, findBinary, freePort, waitFor } from '../support/util.mjs'
import { addUser, openPanel, serveDemo, teardown } from './fixture.mjs'

const PASSWORD = 'operator-pass-1'
const N = 1000
const TAG = 'SP_Ramp_Rate_kW_s'
const PRIORITIES = ['urgent', 'high', 'medium', 'low']
const BOUND = Number(process.env.LONGTASK_BOUND_MS ?? 50)

let bin, tmp, base, server, browser, page, token
const pageErrors = []

async function api(method, p, tok, body) {
  const res = await fetch(base + p, {
    method,
    headers: { ...(tok ? { Authorization: `Bearer ${tok}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

/** Starts recording long tasks in the page (a fresh list). */
async function observe() {
  await page.evaluate(() => {
    window.__longtasks?.observer.disconnect()
    const tasks = []
    const observer = new PerformanceObserver((l) => { for (const e of l.getEntries()) tasks.push(e.duration) })
    observer.observe({ type: 'longtask' })
    // The longest gap between animation frames too (a long task shows as a long frame).
    const frames = { last: performance.now(), max: 0, on: true }
    const tick = (t) => {
      frames.max = Math.max(frames.max, t - frames.last)
      frames.last = t
      if (frames.on) requestAnimationFrame(tick)
    }
    requestAnimationFrame(tick)
    window.__longtasks?.frames && (window.__longtasks.frames.on = false)
    window.__longtasks = { observer, tasks, frames }
  })
}

/** The long tasks recorded since `observe`, after two animation frames (the last render done). */
async function longtasks() {
  return page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => {
    const { observer, tasks, frames } = window.__longtasks
    for (const e of observer.takeRecords()) tasks.push(e.duration)
    frames.on = false
    resolve({ tasks: [...tasks], frame: frames.max })
  })))).then(({ tasks, frame }) => Object.assign(tasks, { frame }))
}

const fmt = (tasks) => `${tasks.length} long tasks (> 50 ms)${tasks.length ? `, longest ${Math.max(...tasks).toFixed(0)} ms [${tasks.map((t) => t.toFixed(0)).join(', ')}]` : ''}; longest frame ${tasks.frame.toFixed(0)} ms`

async function write(value) {
  const w = await api('POST', '/api/write', token, { plc: 'eco_solar', node: TAG, value })
  assert.equal(w.status, 200, JSON.stringify(w.body))
}

describe('the panel during a flood of 1,000 alarms', () => {
  before(async () => {
    bin = findBinary()
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), 'build the UI first')
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-flood-'))
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    cfg.broadcast_interval_seconds = 0.5
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${port}`, allow_remote_writes: true }
    delete cfg.calibration
    cfg.alarms = Array.from({ length: N }, (_, i) => ({
      id: `flood_${i}`, tag: `eco_solar/${TAG}`, condition: 'high', limit: 100 + i,
      priority: PRIORITIES[i % 4], message: { en: `Ramp rate above ${100 + i} kW/s`, de: `Rampe über ${100 + i} kW/s` },
    }))
    const cfgPath = path.join(tmp, 'config.json')
    const dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
    addUser(bin, cfgPath, dbPath, 'op', 'operator', 'eco_solar,isiada', PASSWORD)
    server = await serveDemo(bin, cfgPath, dbPath, base)
    ;({ browser, page } = await openPanel(base, pageErrors, { timeout: 30000 }))
  })

  after(() => teardown(browser, server, tmp))

  it('keeps every main-thread task short while 1,000 alarms come and go', async () => {
    token = (await api('POST', '/api/login', null, { username: 'op', password: PASSWORD })).body.token
    await waitFor('eco_solar connected', async () => {
      const s = (await api('GET', '/api/snapshot', token)).body
      return s.plcs.some((p) => p.id === 'eco_solar' && p.status === 'CONNECTED')
    }, 60000, 250)
    await page.getByTestId('login-screen').waitFor()
    await page.getByTestId('mode-password').click()
    await page.getByTestId('login-username').fill('op')
    await page.getByTestId('login-password').fill(PASSWORD)
    await page.getByTestId('login-submit').click()
    const banner = page.getByTestId('alarm-banner')
    await banner.waitFor()
    await page.getByTestId('park-card-eco_solar').waitFor()
    assert.equal(await banner.getAttribute('data-unack'), 'false')

    // 1. The flood arrives on the overview: the session bar counts 1,000 (250 per priority).
    await observe()
    await write(5000)
    await waitFor('1,000 in the bar', async () => /U\s*250/.test(await page.getByTestId('alarm-count-urgent').innerText().catch(() => '')), 30000, 50)
    const overview = await longtasks()
    console.log(`flood on the overview: ${fmt(overview)}`)

    // 2. The summary screen opens with 1,000 alarms.
    await observe()
    await banner.click()
    await page.getByTestId('alarms-screen').waitFor()
    await page.getByTestId('alarm-flood_0').waitFor()
    const open = await longtasks()
    console.log(`summary screen opening with ${N} alarms: ${fmt(open)}`)
    // Only a screenful of rows is in the DOM; scrolling to the end renders the end.
    const list = page.getByTestId('alarms-list')
    assert.equal(await list.getAttribute('data-total'), String(N))
    const rendered = () => list.locator('li.row').evaluateAll((els) => els.map((e) => e.dataset.testid))
    const top = await rendered()
    assert.ok(top.length > 0 && top.length < 40, `${top.length} rows rendered`)
    await observe()
    await list.evaluate((el) => { el.scrollTop = el.scrollHeight })
    await waitFor('the end rendered', async () => !(await rendered()).includes(top[0]), 10000, 50)
    const bottom = await rendered()
    const sorted = (await api('GET', '/api/alarms', token)).body.alarms.filter((a) => a.id.startsWith('flood_'))
    assert.equal(bottom.at(-1), `alarm-${sorted.at(-1).id}`, 'the last row is the last alarm')
    const scrolled = await longtasks()
    console.log(`scrolling to the end of ${N}: ${fmt(scrolled)}`)
    await list.evaluate((el) => { el.scrollTop = 0 })
    await waitFor('the top rendered again', async () => (await rendered()).includes(top[0]), 10000, 50)

    // 3. All 1,000 return to normal (rtn_unack) while the summary is open.
    await observe()
    await write(50)
    await waitFor('all returned', async () => (await page.getByTestId('alarm-flood_0').getAttribute('data-state')) === 'rtn_unack'
      && (await page.getByTestId(`alarm-flood_${N - 1}`).count() === 0 || (await page.getByTestId(`alarm-flood_${N - 1}`).getAttribute('data-state')) === 'rtn_unack'), 30000, 50)
    const back = await longtasks()
    console.log(`1,000 returning to normal on the summary: ${fmt(back)}`)
    const after = (await api('GET', '/api/alarms', token)).body.alarms.filter((a) => a.id.startsWith('flood_'))
    assert.equal(after.length, N)
    assert.ok(after.every((a) => a.state === 'rtn_unack'))

    const all = [overview, open, scrolled, back]
    const longest = Math.max(0, ...all.flat())
    console.log(`longest main-thread task: ${longest.toFixed(0)} ms (bound ${BOUND} ms); longest frame ${Math.max(...all.map((a) => a.frame)).toFixed(0)} ms`)
    assert.ok(longest <= BOUND, `a main-thread task took ${longest.toFixed(0)} ms`)
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
    assert.equal(overflow, false)
    assert.deepEqual(pageErrors, [])
  })
})
