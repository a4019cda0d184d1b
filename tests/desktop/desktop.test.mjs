// End-to-end test of the desktop window: the real `stator --demo` (feature `desktop`, Tauri +
// WebKitGTK) driven through tauri-driver and Debian's WebKitWebDriver, under Xvfb.
//
//   xvfb-run -a env STATOR_BIN=/path/to/stator node --test tests/desktop/
//
// Plain W3C WebDriver over Node's fetch: no client package needed. Every wait is bounded.
// Screenshots go to tests/artifacts/screenshots/desktop-*.png.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { findBinary, freePort, portOpen, waitFor } from '../support/util.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots')
const PARKS = ['eco_solar', 'isiada']
const USER = { name: 'panelop', password: 'panel-operator-1' }
const SETPOINT = 'SP_Power_Limit_kW'
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'

function findDriver() {
  for (const p of [process.env.TAURI_DRIVER, path.join(os.homedir(), '.cargo', 'bin', 'tauri-driver')]) {
    if (p && fs.existsSync(p)) return p
  }
  return 'tauri-driver'
}

let bin, tmp, cfgPath, dbPath, driver, driverLog = '', wd, session, httpBase

async function call(method, p, body) {
  const res = await fetch(`${wd}${p}`, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(60000),
  })
  const json = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json).slice(0, 500)}`)
  return json.value
}

const s = (p) => `/session/${session}${p}`

async function find(testid) {
  const v = await call('POST', s('/element'), { using: 'css selector', value: `[data-testid="${testid}"]` })
  return v[ELEMENT]
}

async function waitElement(testid, ms = 20000) {
  return waitFor(`[data-testid="${testid}"]`, () => find(testid), ms)
}

async function click(testid) {
  const id = await waitElement(testid)
  await call('POST', s(`/element/${id}/click`), {})
}

async function type(testid, text) {
  const id = await waitElement(testid)
  await call('POST', s(`/element/${id}/clear`), {})
  await call('POST', s(`/element/${id}/value`), { text })
}

async function text(testid) {
  const id = await waitElement(testid)
  return call('GET', s(`/element/${id}/text`))
}

async function shot(name) {
  const b64 = await call('GET', s('/screenshot'))
  fs.writeFileSync(path.join(SHOTS, `desktop-${name}.png`), Buffer.from(b64, 'base64'))
}

async function http(method, p, token, body) {
  const res = await fetch(httpBase + p, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const t = await res.text()
  return { status: res.status, body: t ? JSON.parse(t) : null }
}

describe('desktop window (Tauri) against its own --demo simulator', () => {
  before(async () => {
    bin = findBinary()
    fs.mkdirSync(SHOTS, { recursive: true })
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-desktop-'))
    const httpPort = await freePort()
    httpBase = `http://127.0.0.1:${httpPort}`
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    cfg.broadcast_interval_seconds = 0.5
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${httpPort}` }
    cfgPath = path.join(tmp, 'config.json')
    dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
    const r = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, 'user', 'add', USER.name, '--role', 'operator', '--parks', PARKS.join(','), '--password-stdin'], { input: USER.password + '\n', encoding: 'utf8', timeout: 30000 })
    assert.equal(r.status, 0, `user add failed: ${r.stderr}`)

    const port = await freePort()
    const nativePort = await freePort()
    driver = spawn(findDriver(), ['--port', String(port), '--native-port', String(nativePort)], { stdio: ['ignore', 'pipe', 'pipe'] })
    driver.stdout.on('data', (d) => (driverLog += d))
    driver.stderr.on('data', (d) => (driverLog += d))
    wd = `http://127.0.0.1:${port}`
    // Both the intermediary and the native WebKitWebDriver must accept connections first.
    await waitFor('tauri-driver ports', async () => (await portOpen(port)) && (await portOpen(nativePort)), 30000)
    const created = await call('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          'tauri:options': { application: bin, args: ['--demo', '--config', cfgPath, '--db', dbPath] },
        },
      },
    }).catch((e) => {
      throw new Error(`${e.message}\n--- driver log ---\n${driverLog.slice(-4000)}`)
    })
    session = created.sessionId
    assert.ok(session, 'a WebDriver session')
  })

  after(async () => {
    if (session) await call('DELETE', s('')).catch(() => {})
    if (driver && driver.exitCode === null) {
      driver.kill('SIGTERM')
      await waitFor('driver exit', () => driver.exitCode !== null || driver.signalCode !== null, 5000).catch(() => driver.kill('SIGKILL'))
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('opens the panel window at 1280 x 400 on the login screen', async () => {
    await waitElement('login-screen', 60000)
    const rect = await call('GET', s('/window/rect'))
    assert.equal(rect.width, 1280)
    assert.equal(rect.height, 400)
    await shot('01-login')
  })

  it('logs in through the Tauri command and shows both parks', async () => {
    await click('mode-password')
    await type('login-username', USER.name)
    await type('login-password', USER.password)
    await click('login-submit')
    await waitElement('session-bar')
    assert.match(await text('session-user'), new RegExp(USER.name))
    for (const id of PARKS) await waitElement(`park-card-${id}`)
    await waitFor('both parks CONNECTED', async () => {
      for (const id of PARKS) {
        const el = await waitElement(`plc-state-${id}`)
        if ((await call('GET', s(`/element/${el}/attribute/data-status`))) !== 'CONNECTED') return false
      }
      return true
    }, 60000)
    await waitElement('tag-value')
    await shot('02-overview')
  })

  it('sees a live value change (Tauri events)', async () => {
    await click(`park-card-${PARKS[0]}`)
    await waitElement('park-screen')
    const row = 'tag-row-Heartbeat_ms'
    const first = await waitFor('a heartbeat value', async () => {
      const t = await text(row)
      return /\d/.test(t) && t
    })
    await waitFor('the heartbeat to change', async () => (await text(row)) !== first, 20000)
    await shot('03-park')
  })

  it('writes a setpoint with confirm and read-back', async () => {
    await click(`tag-row-${SETPOINT}`)
    await waitElement('tag-screen')
    const before = await text('tag-value')
    const next = /\b750\b/.test(before) ? 650 : 750
    await click('write-start')
    const pad = await waitElement('numpad')
    for (const ch of String(next)) {
      const key = await call('POST', s(`/element/${pad}/element`), { using: 'css selector', value: `[data-key="${ch}"]` })
      await call('POST', s(`/element/${key[ELEMENT]}/click`), {})
    }
    await click('write-review')
    await waitElement('write-confirm')
    assert.match(await text('confirm-new'), new RegExp(String(next)))
    await click('write-confirm-btn')
    const result = await waitElement('write-result')
    const ok = await call('GET', s(`/element/${result}/attribute/data-ok`))
    assert.equal(ok, 'true', await text('write-result'))
    assert.match(await text('write-result'), new RegExp(String(next)))
    await shot('04-write-done')

    // Independent read-back: the same process's remote server, as another client would see it.
    const { body: lg } = await http('POST', '/api/login', null, { username: USER.name, password: USER.password })
    await waitFor('the written value in the snapshot', async () => {
      const snap = (await http('GET', '/api/snapshot', lg.token)).body
      const n = snap.plcs.find((p) => p.id === PARKS[0]).nodes.find((x) => x.name === SETPOINT)
      return Math.abs(Number(n.value) - next) < 1e-3
    })
    // The panel write is in the audit trail with source "panel".
    const audit = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, 'audit', 'export'], { encoding: 'utf8', timeout: 30000 })
    assert.equal(audit.status, 0, audit.stderr)
    const rows = audit.stdout.trim().split('\n').map((l) => JSON.parse(l))
    assert.ok(rows.some((r) => r.source === 'panel' && /write/.test(r.action) && String(r.target).includes(SETPOINT)), 'a panel write row in the audit trail')
  })
})
