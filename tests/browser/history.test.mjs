// The trend under a tag in a real browser (Debian's Chromium via playwright-core) against the
// real `stator serve --demo` with its historian, at the panel's 1280 x 400: it draws recorded
// values, pans back in time by dragging, and nothing overflows; on the trend screen a pen on a
// tag with a configured limit alarm shows its limit line (read from the hidden legend the canvas
// code fills, plus the priority colour's pixels on that row), a two-finger pinch (CDP touch
// events) zooms in and out, and a limit moved by `config_set` reaches the open trend.
//
//   STATOR_BIN=/path/to/stator node --test tests/browser/history.test.mjs

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { ROOT, findBinary, freePort, waitFor } from '../support/util.mjs'

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots')
const PASSWORD = 'operator-pass-1'
const SUPER_PASSWORD = 'superuser-pass-1'

let bin, tmp, base, server, log = '', browser, page

describe('trend under a tag', () => {
  before(async () => {
    bin = findBinary()
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), 'build the UI first')
    fs.mkdirSync(SHOTS, { recursive: true })
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-trend-'))
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    cfg.broadcast_interval_seconds = 0.5
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${port}` }
    cfg.history = { min_interval_seconds: 0, flush_seconds: 0.2 }
    const cfgPath = path.join(tmp, 'config.json')
    const dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
    const r = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, 'user', 'add', 'op', '--role', 'operator', '--parks', 'eco_solar', '--password-stdin'], { input: PASSWORD + '\n', encoding: 'utf8', timeout: 30000 })
    assert.equal(r.status, 0, r.stderr)
    const s = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, 'user', 'add', 'sue', '--role', 'superuser', '--password-stdin'], { input: SUPER_PASSWORD + '\n', encoding: 'utf8', timeout: 30000 })
    assert.equal(s.status, 0, s.stderr)
    server = spawn(bin, ['--config', cfgPath, '--db', dbPath, 'serve', '--demo'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    server.stdout.on('data', (d) => (log += d))
    server.stderr.on('data', (d) => (log += d))
    await waitFor('GET /health', async () => (await fetch(`${base}/health`)).ok, 60000, 250)
    // The historian has stored some samples of the power before the panel asks.
    await waitFor('history samples', async () => ((await (await fetch(`${base}/health`)).json()).history?.stored ?? 0) > 20, 30000, 250)
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] })
    page = await (await browser.newContext({ viewport: { width: 1280, height: 400 } })).newPage()
    page.setDefaultTimeout(15000)
  })

  after(async () => {
    await browser?.close().catch(() => {})
    if (server && server.exitCode === null) {
      server.kill('SIGTERM')
      await waitFor('server exit', () => server.exitCode !== null || server.signalCode !== null, 5000).catch(() => server.kill('SIGKILL'))
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('draws the recorded values, pans by drag, fits 1280 x 400', async () => {
    await page.goto(base + '/')
    await page.getByTestId('login-screen').waitFor()
    await page.getByTestId('mode-password').click()
    await page.getByTestId('login-username').fill('op')
    await page.getByTestId('login-password').fill(PASSWORD)
    await page.getByTestId('login-submit').click()
    await page.getByTestId('session-bar').waitFor()
    await page.getByTestId('park-card-eco_solar').click()
    await page.getByTestId('tag-row-Active_Power_kW').click()
    await page.getByTestId('tag-screen').waitFor()
    const canvas = page.getByTestId('trend-canvas')
    await canvas.waitFor()
    await page.locator('[data-testid="trend-state"][data-state="ready"]').waitFor({ state: 'attached' })
    const drawn = Number(await canvas.getAttribute('data-drawn'))
    assert.ok(drawn > 0, `points drawn: ${drawn}`)
    // Pen pixels (the first pen's colour #1f5aa0) inside the canvas.
    const pen = await canvas.evaluate((c) => {
      const g = c.getContext('2d')
      const d = g.getImageData(0, 0, c.width, c.height).data
      let n = 0
      for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 31) < 12 && Math.abs(d[i + 1] - 90) < 12 && Math.abs(d[i + 2] - 160) < 12 && d[i + 3] > 200) n++
      return n
    })
    assert.ok(pen > 20, `pen pixels: ${pen}`)
    const overflow = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight])
    assert.ok(overflow[0] <= 1280 && overflow[1] <= 400, `no overflow: ${overflow}`)
    await page.screenshot({ path: path.join(SHOTS, 'trend-under-tag.png') })

    // Drag right by 150 px: the window moves back in time and is no longer live.
    const before = Number(await canvas.getAttribute('data-to'))
    const b = await canvas.boundingBox()
    await page.mouse.move(b.x + b.width * 0.7, b.y + b.height / 2)
    await page.mouse.down()
    await page.mouse.move(b.x + b.width * 0.7 + 150, b.y + b.height / 2, { steps: 5 })
    await page.mouse.up()
    await page.locator('[data-testid="trend-state"][data-state="ready"]').waitFor({ state: 'attached' })
    const afterTo = Number(await canvas.getAttribute('data-to'))
    assert.ok(afterTo < before - 60_000, `panned back: ${before} → ${afterTo}`)
    assert.notEqual(await page.getByTestId('trend-state').innerText(), 'Live')
    // A range button returns to a live window.
    await page.getByTestId('trend-range-10m').click()
    await page.locator('[data-testid="trend-state"][data-state="ready"]').waitFor({ state: 'attached' })
    const to10 = Number(await canvas.getAttribute('data-to'))
    const from10 = Number(await canvas.getAttribute('data-from'))
    assert.ok(Math.abs(to10 - from10 - 600_000) < 2000, 'a 10 minute window')
  })

  it('draws up to 4 pens on the trend screen, each with its own axis', async () => {
    await page.getByTestId('back').click()
    await page.getByTestId('open-trend').click()
    await page.getByTestId('trend-screen').waitFor()
    for (const tag of ['Active_Power_kW', 'Grid_Frequency_Hz', 'Reactive_Power_kvar']) {
      const pen = page.getByTestId(`pen-${tag}`)
      if (!(await pen.evaluate((b) => b.classList.contains('on')))) await pen.click()
    }
    const canvas = page.getByTestId('trend-canvas')
    await page.locator('[data-testid="trend-state"][data-state="ready"]').waitFor({ state: 'attached' })
    await waitFor('pens drawn', async () => Number(await canvas.getAttribute('data-drawn')) > 0, 10000)
    const colours = await canvas.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
      const want = [[31, 90, 160], [40, 40, 40], [120, 80, 160]]
      return want.map(([r, g, b]) => {
        let n = 0
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - r) < 10 && Math.abs(d[i + 1] - g) < 10 && Math.abs(d[i + 2] - b) < 10 && d[i + 3] > 200) n++
        return n
      })
    })
    assert.ok(colours.every((n) => n > 10), `each pen has pixels (axis labels or lines): ${colours}`)
    const overflow = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight])
    assert.ok(overflow[0] <= 1280 && overflow[1] <= 400, `no overflow: ${overflow}`)
    await page.screenshot({ path: path.join(SHOTS, 'trend-screen.png') })
  })

  it('draws the configured alarm limit of a pen, pinch zooms, and follows config_set', async () => {
    // The trend screen still shows Active_Power_kW (one of its pens), whose demo alarm is
    // eco_solar_power_high (high, 1100 kW, priority high); isiada's alarms are not the operator's.
    const canvas = page.getByTestId('trend-canvas')
    const limit = page.locator('[data-testid="trend-limit"][data-kind="alarm"][data-alarm="eco_solar_power_high"]')
    await limit.waitFor({ state: 'attached' })
    assert.equal(await limit.getAttribute('data-priority'), 'high')
    assert.equal(await limit.getAttribute('data-value'), '1100')
    const pen = Number(await limit.getAttribute('data-pen'))
    const colour = [[31, 90, 160], [40, 40, 40], [120, 80, 160], [20, 130, 120]][pen]
    assert.match(await limit.textContent(), /eco_solar\/Active_Power_kW: H 1100 \(H High\)/)
    assert.equal(await page.locator('[data-testid="trend-limit"][data-alarm^="isiada"]').count(), 0)
    // The line and its priority marker are on the canvas at the listed row: the pen's colour
    // across the plot and the priority orange (#d35400) at the right end.
    const y = Number(await limit.getAttribute('data-y'))
    const row = await canvas.evaluate((c, [y, colour]) => {
      const dpr = c.width / c.clientWidth
      const g = c.getContext('2d')
      const near = (d, i, [r, gg, b]) => Math.abs(d[i] - r) < 20 && Math.abs(d[i + 1] - gg) < 20 && Math.abs(d[i + 2] - b) < 20 && d[i + 3] > 200
      let pen = 0, mark = 0
      for (let dy = -1; dy <= 1; dy++) {
        const d = g.getImageData(0, Math.round((y + dy) * dpr), c.width, 1).data
        for (let i = 0; i < d.length; i += 4) {
          if (near(d, i, colour)) pen++
          if (i / 4 > c.width - 40 * dpr && near(d, i, [211, 84, 0])) mark++
        }
      }
      return { pen, mark, width: c.width }
    }, [y, colour])
    assert.ok(row.pen > row.width * 0.5, `limit line across the plot at y=${y}: ${JSON.stringify(row)}`)
    assert.ok(row.mark > 5, `priority marker at y=${y}: ${JSON.stringify(row)}`)

    // Pinch: two fingers on the plot's centre spread apart → a shorter window; pinched
    // together again → a longer one, back at the live edge.
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 5 })
    const b = await canvas.boundingBox()
    const cx = b.x + b.width * 0.6
    const cy = b.y + b.height / 2
    const touch = async (type, half) => cdp.send('Input.dispatchTouchEvent', {
      type,
      touchPoints: type === 'touchEnd' ? [] : [{ x: cx - half, y: cy, id: 1 }, { x: cx + half, y: cy, id: 2 }],
    })
    const span = async () => Number(await canvas.getAttribute('data-to')) - Number(await canvas.getAttribute('data-from'))
    const gesture = async (from, to) => {
      await touch('touchStart', from)
      for (let k = 1; k <= 5; k++) await touch('touchMove', from + ((to - from) * k) / 5)
      await touch('touchEnd', to)
      await page.locator('[data-testid="trend-state"][data-state="ready"]').waitFor({ state: 'attached' })
    }
    const before = await span()
    await gesture(40, 160)
    const zoomedIn = await span()
    assert.ok(zoomedIn < before * 0.4, `pinch out zooms in: ${before} → ${zoomedIn}`)
    assert.notEqual(await page.getByTestId('trend-state').innerText(), 'Live')
    await gesture(160, 20)
    const zoomedOut = await span()
    assert.ok(zoomedOut > zoomedIn * 4, `pinch in zooms out: ${zoomedIn} → ${zoomedOut}`)
    await waitFor('live again', async () => (await page.getByTestId('trend-state').innerText()) === 'Live', 5000)
    await cdp.detach()

    // A superuser moves the limit (config_set over a WebSocket of its own); the fresh snapshot
    // that follows reloads the open trend with the new line.
    const result = await page.evaluate(async ({ password }) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws')
      const replies = new Map()
      let next = 0
      const waiting = new Map()
      ws.onmessage = (m) => {
        const v = JSON.parse(m.data)
        if (v.id != null && waiting.has(v.id)) waiting.get(v.id)(v)
        replies.set(v.id, v)
      }
      await new Promise((ok, ko) => { ws.onopen = ok; ws.onerror = ko })
      const call = (msg) => new Promise((ok) => { const id = ++next; waiting.set(id, ok); ws.send(JSON.stringify({ ...msg, id })) })
      const login = await call({ op: 'login', username: 'sue', password })
      if (!login.ok) return login
      const got = await call({ op: 'config_get' })
      const cfg = got.result.config
      cfg.alarms.find((a) => a.id === 'eco_solar_power_high').limit = 1050
      const set = await call({ op: 'config_set', config: cfg, version: got.result.version, password })
      ws.close()
      return set
    }, { password: SUPER_PASSWORD })
    assert.equal(result.ok, true, JSON.stringify(result))
    await page.locator('[data-testid="trend-limit"][data-alarm="eco_solar_power_high"][data-value="1050"]').waitFor({ state: 'attached', timeout: 10000 })
    const overflow = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight])
    assert.ok(overflow[0] <= 1280 && overflow[1] <= 400, `no overflow: ${overflow}`)
    await page.screenshot({ path: path.join(SHOTS, 'trend-limits.png') })
  })
})
