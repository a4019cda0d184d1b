// The trend under a tag in a real browser (Debian's Chromium via playwright-core) against the
// real `stator serve --demo` with its historian, at the panel's 1280 x 400: it draws recorded
// values, pans back in time by dragging, and nothing overflows.
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
})
