// End-to-end test of kiosk mode: the real `stator --demo --kiosk` (feature `desktop`) driven
// through tauri-driver under Xvfb. The window must cover the screen; an operator may not leave;
// an admin's password ends the app, and the audit trail says so (`kiosk_exit`, source `panel`).
//
//   xvfb-run -a env STATOR_BIN=/path/to/stator node --test tests/desktop/
//
// Plain W3C WebDriver over Node's fetch. Every wait is bounded.
// Screenshots go to tests/artifacts/screenshots/kiosk-*.png.

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
const OPERATOR = { name: 'kioskop', password: 'kiosk-operator-1', role: 'operator' }
const ADMIN = { name: 'kioskadm', password: 'kiosk-admin-1', role: 'admin' }
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'

function findDriver() {
  for (const p of [process.env.TAURI_DRIVER, path.join(os.homedir(), '.cargo', 'bin', 'tauri-driver')]) {
    if (p && fs.existsSync(p)) return p
  }
  return 'tauri-driver'
}

let bin, tmp, cfgPath, dbPath, driver, driverLog = '', wd, session

async function call(method, p, body, ms = 60000) {
  const res = await fetch(`${wd}${p}`, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(ms),
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
  fs.writeFileSync(path.join(SHOTS, `kiosk-${name}.png`), Buffer.from(b64, 'base64'))
}

/** Stator processes started with this test's config file (the app under test). */
function appProcesses() {
  const found = []
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      if (args.includes(cfgPath) && args.includes('--kiosk')) found.push(Number(pid))
    } catch {
      /* gone meanwhile */
    }
  }
  return found
}

async function attemptExit(user) {
  await click('kiosk-exit')
  await waitElement('kiosk-prompt')
  await type('kiosk-username', user.name)
  await type('kiosk-password', user.password)
  await click('kiosk-submit')
}

describe('desktop kiosk mode (Tauri, --kiosk)', () => {
  before(async () => {
    bin = findBinary()
    fs.mkdirSync(SHOTS, { recursive: true })
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-kiosk-'))
    const httpPort = await freePort()
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    cfg.broadcast_interval_seconds = 0.5
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${httpPort}` }
    cfgPath = path.join(tmp, 'config.json')
    dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
    for (const u of [OPERATOR, ADMIN]) {
      const r = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, 'user', 'add', u.name, '--role', u.role, '--parks', PARKS.join(','), '--password-stdin'], { input: u.password + '\n', encoding: 'utf8', timeout: 30000 })
      assert.equal(r.status, 0, `user add ${u.name} failed: ${r.stderr}`)
    }

    const port = await freePort()
    const nativePort = await freePort()
    driver = spawn(findDriver(), ['--port', String(port), '--native-port', String(nativePort)], { stdio: ['ignore', 'pipe', 'pipe'] })
    driver.stdout.on('data', (d) => (driverLog += d))
    driver.stderr.on('data', (d) => (driverLog += d))
    wd = `http://127.0.0.1:${port}`
    await waitFor('tauri-driver ports', async () => (await portOpen(port)) && (await portOpen(nativePort)), 30000)
    const created = await call('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          'tauri:options': { application: bin, args: ['--demo', '--kiosk', '--config', cfgPath, '--db', dbPath] },
        },
      },
    }).catch((e) => {
      throw new Error(`${e.message}\n--- driver log ---\n${driverLog.slice(-4000)}`)
    })
    session = created.sessionId
    assert.ok(session, 'a WebDriver session')
  })

  after(async () => {
    if (session) await call('DELETE', s(''), undefined, 5000).catch(() => {})
    if (driver && driver.exitCode === null) {
      driver.kill('SIGTERM')
      await waitFor('driver exit', () => driver.exitCode !== null || driver.signalCode !== null, 5000).catch(() => driver.kill('SIGKILL'))
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('opens fullscreen (the window covers the screen) with an Exit kiosk button', async () => {
    await waitElement('login-screen', 60000)
    const btn = await waitElement('kiosk-exit')
    const btnRect = await call('GET', s(`/element/${btn}/rect`))
    assert.ok(btnRect.height >= 48, `Exit kiosk button is ${btnRect.height} px high`)
    const screen = await call('POST', s('/execute/sync'), { script: 'return [screen.width, screen.height]', args: [] })
    assert.ok(screen[0] > 0 && screen[1] > 0, `screen ${screen}`)
    const rect = await waitFor('the window to cover the screen', async () => {
      const r = await call('GET', s('/window/rect'))
      return r.x <= 0 && r.y <= 0 && r.width >= screen[0] && r.height >= screen[1] && r
    }, 20000)
    assert.notEqual(`${rect.width}x${rect.height}`, '1280x400', 'not the windowed default size')
    await shot('01-login')
  })

  it("refuses an operator's exit attempt and shows why", async () => {
    await attemptExit(OPERATOR)
    await waitElement('kiosk-error')
    assert.match(await text('kiosk-error'), /only an admin or superuser may leave kiosk mode/)
    await shot('02-refused')
    assert.ok(appProcesses().length > 0, 'the app still runs')
    // A wrong admin password is refused too, with its own reason.
    await type('kiosk-username', ADMIN.name)
    await type('kiosk-password', 'not-the-password')
    await click('kiosk-submit')
    await waitFor('the invalid-credentials reason', async () => /Wrong user name or password/.test(await text('kiosk-error')))
    await click('kiosk-cancel')
    await waitFor('the prompt to close', async () => {
      const v = await call('POST', s('/elements'), { using: 'css selector', value: '[data-testid="kiosk-prompt"]' })
      return v.length === 0
    })
    assert.ok(appProcesses().length > 0, 'the app still runs')
  })

  it("ends the app on an admin's password, audited as kiosk_exit from the panel", async () => {
    assert.ok(appProcesses().length > 0, 'the app runs before the exit')
    await attemptExit(ADMIN)
    await waitFor('the app process to end', () => appProcesses().length === 0, 20000)
    // The WebDriver session has lost its application.
    await assert.rejects(call('GET', s('/title'), undefined, 10000))
    const audit = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, 'audit', 'export'], { encoding: 'utf8', timeout: 30000 })
    assert.equal(audit.status, 0, audit.stderr)
    const rows = audit.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
    const exits = rows.filter((r) => r.action === 'kiosk_exit')
    assert.equal(exits.length, 1, `one kiosk_exit row: ${JSON.stringify(exits)}`)
    assert.equal(exits[0].source, 'panel')
    assert.equal(exits[0].actor, ADMIN.name)
  })
})
