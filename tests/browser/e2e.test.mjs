// End-to-end test of the panel UI in a real browser (Debian's Chromium via playwright-core)
// against the real `stator serve --demo`, at the panel's 1280 x 400.
//
//   STATOR_BIN=/path/to/stator node --test tests/browser/e2e.test.mjs
//
// Needs: the UI built (`npm run build` in ui/ → ui/dist) and a headless stator binary
// (`cargo build --no-default-features`). Screenshots go to tests/artifacts/screenshots/.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { findBinary, freePort, waitFor } from '../support/util.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots')
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const VIEWPORT = { width: 1280, height: 400 }
const USERS = {
  op: { password: 'operator-pass-1', role: 'operator' },
  adm: { password: 'admin-pass-123', role: 'admin' },
  view: { password: 'viewer-pass-12', role: 'viewer' },
}
const PARKS = ['eco_solar', 'isiada']
const NUMERIC = new Set(['SByte', 'Byte', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64', 'UInt64', 'Float', 'Double'])
const INTEGER = new Set(['SByte', 'Byte', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64', 'UInt64'])

let bin, tmp, cfgPath, dbPath, base, server, serverLog = '', browser, page
const cspViolations = []
const pageErrors = []

function stator(args, input) {
  const r = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, ...args], { input, cwd: ROOT, encoding: 'utf8', timeout: 30000 })
  assert.equal(r.status, 0, `stator ${args.join(' ')} failed: ${r.stderr}${r.stdout}`)
}

async function api(method, p, token, body) {
  const res = await fetch(base + p, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) })
}

async function login(user) {
  await page.getByTestId('login-screen').waitFor()
  await page.getByTestId('mode-password').click()
  await page.getByTestId('login-username').fill(user)
  await page.getByTestId('login-password').fill(USERS[user].password)
  await page.getByTestId('login-submit').click()
  await page.getByTestId('session-bar').waitFor()
}

async function logout() {
  await page.getByTestId('logout').click()
  await page.getByTestId('login-screen').waitFor()
}

/** Types a number on the on-screen numeric pad. */
async function typeOnPad(text) {
  const pad = page.getByTestId('numpad')
  let negative = false
  for (const ch of text) {
    if (ch === '-') negative = true
    else await pad.locator(`[data-key="${ch}"]`).click()
  }
  if (negative) await pad.locator('[data-key="-"]').click()
}

async function openTag(plc, name) {
  await page.getByTestId('nav-overview').click()
  await page.getByTestId(`park-card-${plc}`).click()
  await page.getByTestId('park-screen').waitFor()
  await page.getByTestId(`tag-row-${name}`).click()
  await page.getByTestId('tag-screen').waitFor()
}

describe('panel UI against stator serve --demo', () => {
  let setpoint // { plc, tag, type, range, value }

  before(async () => {
    bin = findBinary()
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), 'build the UI first: (cd ui && npm ci && npm run build)')
    fs.mkdirSync(SHOTS, { recursive: true })
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-e2e-'))
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    cfg.broadcast_interval_seconds = 0.5
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${port}`, allow_remote_writes: true }
    cfg.auth = { ...(cfg.auth ?? {}), idle_timeout_minutes: { ...(cfg.auth?.idle_timeout_minutes ?? {}), viewer: 0.05 } }
    // Engineering metadata the UI shows when the server forwards it (unit, range, key tags).
    cfg.tags = { ...(cfg.tags ?? {}) }
    for (const id of PARKS) cfg.tags[`${id}/SP_Power_Limit_kW`] = { unit: 'kW', range: [0, 1000], description: 'Active power limit' }
    cfgPath = path.join(tmp, 'config.json')
    dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
    for (const [name, u] of Object.entries(USERS)) {
      stator(['user', 'add', name, '--role', u.role, '--parks', PARKS.join(','), '--password-stdin'], u.password + '\n')
    }
    server = spawn(bin, ['--config', cfgPath, '--db', dbPath, 'serve', '--demo'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    server.stdout.on('data', (d) => (serverLog += d))
    server.stderr.on('data', (d) => (serverLog += d))
    await waitFor('GET /health', async () => (await fetch(`${base}/health`)).ok, 60000, 250).catch((e) => {
      throw new Error(`${e.message}\n--- server log ---\n${serverLog.slice(-4000)}`)
    })

    // Pick a setpoint the way an operator would find one: writable, numeric, scalar, good quality.
    const { body: lg } = await api('POST', '/api/login', null, { username: 'op', password: USERS.op.password })
    const snap = await waitFor('both demo parks connected with values', async () => {
      const s = (await api('GET', '/api/snapshot', lg.token)).body
      const ok = PARKS.every((id) => s.plcs.find((p) => p.id === id && p.status === 'CONNECTED' && p.nodes.some((n) => n.quality === 'good')))
      return ok && s
    }, 60000, 500)
    const park = snap.plcs.find((p) => p.id === 'eco_solar')
    const candidates = park.nodes.filter((n) => n.writable && NUMERIC.has(n.type) && n.array_size == null && !Array.isArray(n.value) && n.quality === 'good')
    assert.ok(candidates.length, `no writable numeric tag in ${park.nodes.map((n) => n.name).join(', ')}`)
    // The simulator's setpoints are SP_*; SP_Power_Limit_kW is the natural one to move.
    const n = candidates.find((c) => /^SP_Power_Limit/i.test(c.name)) ?? candidates.find((c) => /setpoint|limit|(^|_)SP_/i.test(c.name)) ?? candidates[0]
    setpoint = { plc: park.id, tag: n.name, type: n.type, range: n.range ?? null, value: n.value }
    await api('POST', '/api/logout', lg.token)

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    })
    const ctx = await browser.newContext({ viewport: VIEWPORT })
    page = await ctx.newPage()
    page.setDefaultTimeout(15000)
    page.on('pageerror', (e) => pageErrors.push(e.message))
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to (load|apply|execute)/i.test(m.text())) cspViolations.push(m.text())
    })
    await page.goto(base + '/')
  })

  after(async () => {
    await browser?.close().catch(() => {})
    if (server && server.exitCode === null) {
      server.kill('SIGTERM')
      await waitFor('server exit', () => server.exitCode !== null || server.signalCode !== null, 5000).catch(() => server.kill('SIGKILL'))
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('shows the login screen with keyboard, PIN pad and badge entry', async () => {
    await page.getByTestId('login-screen').waitFor()
    assert.ok(await page.getByTestId('keyboard').isVisible())
    await shot('01-login')
    await page.getByTestId('mode-pin').click()
    await page.getByTestId('login-pin').click()
    assert.ok(await page.getByTestId('numpad').isVisible())
    await shot('01b-login-pin')
    await page.getByTestId('mode-badge').click()
    assert.ok(await page.getByTestId('login-badge').isVisible())
    await page.getByTestId('mode-password').click()
    // Language: German and Polish labels, then back to English.
    await page.getByTestId('lang-de').click()
    assert.equal((await page.getByTestId('login-submit').innerText()).trim(), 'Anmelden')
    await page.getByTestId('lang-pl').click()
    assert.equal((await page.getByTestId('login-submit').innerText()).trim(), 'Zaloguj')
    await page.getByTestId('lang-en').click()
    assert.equal((await page.getByTestId('login-submit').innerText()).trim(), 'Sign in')
  })

  it('refuses a wrong password with a reason', async () => {
    await page.getByTestId('login-username').fill('op')
    await page.getByTestId('login-password').fill('wrong-password')
    await page.getByTestId('login-submit').click()
    const err = page.getByTestId('login-error')
    await err.waitFor()
    assert.match(await err.innerText(), /wrong|invalid/i)
  })

  it('logs in and the overview shows both demo parks with changing values', async () => {
    await login('op')
    const bar = page.getByTestId('session-bar')
    assert.match(await bar.innerText(), /op/)
    assert.match(await bar.innerText(), /operator/i)
    for (const id of PARKS) {
      const card = page.getByTestId(`park-card-${id}`)
      await card.waitFor()
      await waitFor(`${id} CONNECTED`, async () => (await card.getByTestId('park-status').innerText()).match(/connected/i) && !(await card.getByTestId('park-status').innerText()).match(/dis/i))
      await waitFor(`${id} key values`, async () => (await card.getByTestId('tag-value').count()) > 0)
    }
    const read = () => page.getByTestId('overview').getByTestId('tag-value').allInnerTexts()
    const first = (await read()).join('|')
    await waitFor('a key value to change', async () => (await read()).join('|') !== first, 20000, 250)
    await shot('02-overview')
  })

  it('opens a park: tags grouped by folder with value, unit and quality', async () => {
    await page.getByTestId(`park-card-${setpoint.plc}`).click()
    await page.getByTestId('park-screen').waitFor()
    const rows = page.locator('[data-testid^="tag-row-"]')
    assert.ok((await rows.count()) >= 5, 'park shows its tags')
    for (const h of await page.locator('[data-testid="park-screen"] .row').all()) {
      const box = await h.boundingBox()
      assert.ok(box.height >= 48, `touch row height ${box.height} >= 48`)
      break
    }
    await shot('03-park')
    // Filter by name with the on-screen keyboard: type the first letters of the setpoint's leaf.
    const total = await page.locator('[data-testid^="tag-row-"]').count()
    const letters = setpoint.tag.split('/').pop().toLowerCase().replace(/[^a-z]/g, '').slice(0, 2)
    await page.getByTestId('park-filter').click()
    const prompt = page.getByTestId('prompt')
    await prompt.waitFor()
    for (const ch of letters) await prompt.locator(`[data-key="${ch}"]`).click()
    await prompt.locator('[data-key="done"]').click()
    await prompt.waitFor({ state: 'detached' })
    const names = (await page.locator('[data-testid^="tag-row-"]').evaluateAll((els) => els.map((e) => e.dataset.testid.slice(8))))
    assert.ok(names.length > 0 && names.length < total, `filter narrowed ${total} rows to ${names.length}`)
    for (const n of names) assert.ok(n.toLowerCase().includes(letters), `${n} matches filter ${letters}`)
    assert.ok(names.includes(setpoint.tag))
    await shot('03b-park-filtered')
  })

  it('writes a setpoint: enter, confirm with old/new, read back', async () => {
    const { plc, tag, type, range, value } = setpoint
    let next
    if (range) next = Math.round((range[0] + (range[1] - range[0]) * (value > (range[0] + range[1]) / 2 ? 0.25 : 0.75)) * 10) / 10
    else next = Number(value) === 800 ? 750 : 800
    if (INTEGER.has(type)) next = Math.round(next)
    await openTag(plc, tag)
    await shot('04-tag')
    await page.getByTestId('write-start').click()
    await typeOnPad(String(next))
    await page.getByTestId('write-review').click()
    const confirm = page.getByTestId('write-confirm')
    await confirm.waitFor()
    assert.match(await page.getByTestId('confirm-new').innerText(), new RegExp(String(next).replace('.', '\\.')))
    assert.ok((await page.getByTestId('confirm-old').innerText()).trim().length > 0)
    await shot('05-write-confirm')
    await page.getByTestId('write-confirm-btn').click()
    const result = page.getByTestId('write-result')
    await result.waitFor()
    assert.equal(await result.getAttribute('data-ok'), 'true', await result.innerText())
    assert.match(await result.innerText(), new RegExp(String(next).replace('.', '\\.')))
    await shot('06-write-done')
    // Independent read-back through the server's own snapshot.
    const { body: lg } = await api('POST', '/api/login', null, { username: 'op', password: USERS.op.password })
    await waitFor('the written value in the snapshot', async () => {
      const s = (await api('GET', '/api/snapshot', lg.token)).body
      const n = s.plcs.find((p) => p.id === plc).nodes.find((x) => x.name === tag)
      return Math.abs(Number(n.value) - next) < 1e-3
    })
    await api('POST', '/api/logout', lg.token)
  })

  it('logs out, and the token is dead', async () => {
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('stator.session') || 'null')?.token)
    assert.ok(token)
    await logout()
    assert.match(await page.getByTestId('login-notice').innerText(), /signed out/i)
    const me = await api('GET', '/api/me', token)
    assert.equal(me.status, 401)
  })

  it('shows a refused write with its reason (admin may not write)', async () => {
    await login('adm')
    await openTag(setpoint.plc, setpoint.tag)
    await page.getByTestId('write-start').click()
    await typeOnPad('1')
    if (await page.getByTestId('write-review').isEnabled()) {
      await page.getByTestId('write-review').click()
      await page.getByTestId('write-confirm-btn').click()
    }
    const result = page.getByTestId('write-result')
    await result.waitFor()
    assert.equal(await result.getAttribute('data-ok'), 'false')
    assert.match(await result.innerText(), /forbidden/)
    await shot('07-write-refused')
  })

  it('admin screens: users and audit trail', async () => {
    await page.getByTestId('nav-admin').click()
    await page.getByTestId('admin-screen').waitFor()
    await page.getByTestId('user-row-op').waitFor()
    await page.getByTestId('user-row-view').click()
    await page.getByTestId('user-edit').waitFor()
    await shot('08-admin-users')
    await page.getByTestId('tab-audit').click()
    await page.getByTestId('audit-table').waitFor()
    await waitFor('audit rows', async () => (await page.locator('[data-testid="audit-table"] tbody tr').count()) > 1)
    await shot('09-admin-audit')
    await logout()
  })

  it('rotated panel (400 x 1280) stays usable', async () => {
    await page.setViewportSize({ width: 400, height: 1280 })
    await login('op')
    await page.getByTestId(`park-card-${setpoint.plc}`).waitFor()
    await shot('10-overview-rotated')
    await logout()
    await page.setViewportSize(VIEWPORT)
  })

  it('logs a viewer out after the idle timeout', async () => {
    await login('view')
    await page.getByTestId('overview').waitFor()
    // viewer idle timeout is 0.05 min = 3 s in the test config; do nothing and wait.
    await page.getByTestId('login-screen').waitFor({ timeout: 20000 })
    const notice = await page.getByTestId('login-notice').innerText()
    assert.match(notice, /inactivity|ended/i)
    await shot('11-idle-logout')
  })

  it('ran under the server CSP without violations or page errors', async () => {
    const res = await fetch(base + '/')
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/)
    assert.deepEqual(cspViolations, [])
    assert.deepEqual(pageErrors, [])
  })
})

// The first superuser from a browser on the panel machine: a server with an empty database logs
// a one-time setup code; the form refuses a wrong code and accepts the one read from the log.
describe('first superuser in a browser with the setup code from the server log', () => {
  let sBin, sTmp, sBase, sServer, sLog = '', sBrowser, sPage

  before(async () => {
    sBin = findBinary()
    sTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-e2e-setup-'))
    const port = await freePort()
    sBase = `http://127.0.0.1:${port}`
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${port}` }
    const cfgFile = path.join(sTmp, 'config.json')
    fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2))
    sServer = spawn(sBin, ['--config', cfgFile, '--db', path.join(sTmp, 'stator.db'), 'serve', '--demo'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
    sServer.stdout.on('data', (d) => (sLog += d))
    sServer.stderr.on('data', (d) => (sLog += d))
    await waitFor('GET /health', async () => (await fetch(`${sBase}/health`)).ok, 60000, 250).catch((e) => {
      throw new Error(`${e.message}\n--- server log ---\n${sLog.slice(-4000)}`)
    })
    sBrowser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    })
    sPage = await (await sBrowser.newContext({ viewport: VIEWPORT })).newPage()
    sPage.setDefaultTimeout(15000)
  })

  after(async () => {
    await sBrowser?.close().catch(() => {})
    if (sServer && sServer.exitCode === null) {
      sServer.kill('SIGTERM')
      await waitFor('server exit', () => sServer.exitCode !== null || sServer.signalCode !== null, 5000).catch(() => sServer.kill('SIGKILL'))
    }
    if (sTmp) fs.rmSync(sTmp, { recursive: true, force: true })
  })

  it('refuses a wrong code, then creates the superuser with the logged one and goes live', async () => {
    // eslint-disable-next-line no-control-regex
    const plain = () => sLog.replace(/\x1b\[[0-9;]*m/g, '')
    const code = await waitFor('the setup code in the server log', () => plain().match(/setup_code=([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})/)?.[1], 10000, 100)
    await sPage.goto(sBase + '/')
    await sPage.getByTestId('setup-code').waitFor()
    await sPage.getByTestId('setup-code').fill('0000-0000-0000')
    await sPage.getByTestId('setup-username').fill('chief')
    await sPage.getByTestId('setup-password').fill('chief-pass-123')
    await sPage.getByTestId('setup-confirm').fill('chief-pass-123')
    await sPage.getByTestId('login-submit').click()
    await sPage.getByTestId('login-error').waitFor()
    assert.match(await sPage.getByTestId('login-error').innerText(), /forbidden|setup code/i)
    assert.ok(await sPage.getByTestId('setup-code').isVisible(), 'still on the setup form')
    await sPage.getByTestId('setup-code').fill(code.toLowerCase())
    await sPage.getByTestId('setup-password').fill('chief-pass-123')
    await sPage.getByTestId('setup-confirm').fill('chief-pass-123')
    await sPage.getByTestId('login-submit').click()
    await sPage.getByTestId('session-bar').waitFor()
    const h = await (await fetch(`${sBase}/health`)).json()
    assert.equal(h.needs_setup, false)
  })
})
