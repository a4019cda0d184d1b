// The desktop suites' harness: a temporary config and database with users, tauri-driver (which
// starts Debian's WebKitWebDriver), a WebDriver session running `stator --demo …`, and small
// W3C WebDriver helpers over Node's fetch (no client package needed). Every wait is bounded.

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, findBinary, freePort, portOpen, waitFor } from './util.mjs'

/** The W3C key under which a found element's id is returned. */
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'
export const PARKS = ['eco_solar', 'isiada']
const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots')

function findDriver() {
  for (const p of [process.env.TAURI_DRIVER, path.join(os.homedir(), '.cargo', 'bin', 'tauri-driver')]) {
    if (p && fs.existsSync(p)) return p
  }
  return 'tauri-driver'
}

/**
 * Starts the desktop app under WebDriver.
 * `users`: [{name, password, role}] created with `stator user add` (all parks);
 * `args`: extra app arguments after `--demo`; `prefix`: screenshot/temp name prefix.
 */
export async function startDesktop({ users, args = [], prefix }) {
  const bin = findBinary()
  fs.mkdirSync(SHOTS, { recursive: true })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `stator-${prefix}-`))
  const httpPort = await freePort()
  const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
  cfg.broadcast_interval_seconds = 0.5
  cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${httpPort}` }
  const cfgPath = path.join(tmp, 'config.json')
  const dbPath = path.join(tmp, 'stator.db')
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
  /** Runs a stator command against this config and database. */
  const stator = (cmd, input) =>
    spawnSync(bin, ['--config', cfgPath, '--db', dbPath, ...cmd], { input, encoding: 'utf8', timeout: 30000 })
  for (const u of users) {
    const r = stator(['user', 'add', u.name, '--role', u.role, '--parks', PARKS.join(','), '--password-stdin'], u.password + '\n')
    assert.equal(r.status, 0, `user add ${u.name} failed: ${r.stderr}`)
  }

  const port = await freePort()
  const nativePort = await freePort()
  let driverLog = ''
  const driver = spawn(findDriver(), ['--port', String(port), '--native-port', String(nativePort)], { stdio: ['ignore', 'pipe', 'pipe'] })
  driver.stdout.on('data', (d) => (driverLog += d))
  driver.stderr.on('data', (d) => (driverLog += d))
  const wd = `http://127.0.0.1:${port}`

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

  // Both the intermediary and the native WebKitWebDriver must accept connections first.
  await waitFor('tauri-driver ports', async () => (await portOpen(port)) && (await portOpen(nativePort)), 30000)
  const created = await call('POST', '/session', {
    capabilities: {
      alwaysMatch: {
        'tauri:options': { application: bin, args: ['--demo', ...args, '--config', cfgPath, '--db', dbPath] },
      },
    },
  }).catch((e) => {
    throw new Error(`${e.message}\n--- driver log ---\n${driverLog.slice(-4000)}`)
  })
  const session = created.sessionId
  assert.ok(session, 'a WebDriver session')
  /** A path below this session. */
  const s = (p) => `/session/${session}${p}`

  async function find(testid) {
    const v = await call('POST', s('/element'), { using: 'css selector', value: `[data-testid="${testid}"]` })
    return v[ELEMENT]
  }
  const waitElement = (testid, ms = 20000) => waitFor(`[data-testid="${testid}"]`, () => find(testid), ms)

  return {
    bin,
    cfgPath,
    httpBase: `http://127.0.0.1:${httpPort}`,
    stator,
    call,
    s,
    waitElement,
    /** The id of the element `css` inside element `parent`. */
    async findIn(parent, css) {
      const v = await call('POST', s(`/element/${parent}/element`), { using: 'css selector', value: css })
      return v[ELEMENT]
    },
    async click(testid) {
      const id = await waitElement(testid)
      await call('POST', s(`/element/${id}/click`), {})
    },
    async type(testid, text) {
      const id = await waitElement(testid)
      await call('POST', s(`/element/${id}/clear`), {})
      await call('POST', s(`/element/${id}/value`), { text })
    },
    async text(testid) {
      const id = await waitElement(testid)
      return call('GET', s(`/element/${id}/text`))
    },
    async shot(name) {
      const b64 = await call('GET', s('/screenshot'))
      fs.writeFileSync(path.join(SHOTS, `${prefix}-${name}.png`), Buffer.from(b64, 'base64'))
    },
    /** Ends the session and the driver, removes the temporary files. */
    async stop() {
      await call('DELETE', s(''), undefined, 5000).catch(() => {})
      if (driver.exitCode === null) {
        driver.kill('SIGTERM')
        await waitFor('driver exit', () => driver.exitCode !== null || driver.signalCode !== null, 5000).catch(() => driver.kill('SIGKILL'))
      }
      fs.rmSync(tmp, { recursive: true, force: true })
    },
  }
}
