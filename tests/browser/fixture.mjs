// The fixture the browser suites share: a user added through the CLI, the real
// `stator serve --demo` until /health answers (its log kept for the failure message), Chromium at
// the panel's 1280 x 400, and a bounded teardown. Each suite writes its own config.

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { chromium } from 'playwright-core'
import { ROOT, waitFor } from '../support/util.mjs'

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
export const VIEWPORT = { width: 1280, height: 400 }

/** `stator user add NAME --role ROLE --parks PARKS` with the password on stdin. */
export function addUser(bin, cfgPath, dbPath, name, role, parks, password) {
  const args = ['--config', cfgPath, '--db', dbPath, 'user', 'add', name, '--role', role, ...(parks ? ['--parks', parks] : []), '--password-stdin']
  const r = spawnSync(bin, args, { input: password + '\n', cwd: ROOT, encoding: 'utf8', timeout: 30000 })
  assert.equal(r.status, 0, r.stderr)
}

/** Starts `stator serve --demo` and waits until `base`/health answers; `log()` is its output. */
export async function serveDemo(bin, cfgPath, dbPath, base) {
  const proc = spawn(bin, ['--config', cfgPath, '--db', dbPath, 'serve', '--demo'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  proc.stdout.on('data', (d) => (log += d))
  proc.stderr.on('data', (d) => (log += d))
  await waitFor('GET /health', async () => (await fetch(`${base}/health`)).ok, 60000, 250).catch((e) => {
    throw new Error(`${e.message}\n--- server log ---\n${log.slice(-4000)}`)
  })
  return { proc, log: () => log }
}

/** Chromium (headless) with one page at 1280 x 400 on `base`; page errors go to `errors`. */
export async function openPanel(base, errors, { timeout = 15000, context = {} } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  const page = await (await browser.newContext({ viewport: VIEWPORT, ...context })).newPage()
  page.setDefaultTimeout(timeout)
  page.on('pageerror', (e) => errors.push(e.message))
  await page.goto(base + '/')
  return { browser, page }
}

/** Closes the browser, stops the server (SIGTERM, SIGKILL after 5 s) and removes `tmp`. */
export async function teardown(browser, server, tmp) {
  await browser?.close().catch(() => {})
  const proc = server?.proc
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM')
    await waitFor('server exit', () => proc.exitCode !== null || proc.signalCode !== null, 5000).catch(() => proc.kill('SIGKILL'))
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
}
