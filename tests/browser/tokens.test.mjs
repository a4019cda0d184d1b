// The API token screen in a real browser (Debian's Chromium via playwright-core) against the real
// `stator serve`: a superuser creates a token, sees its secret exactly once, the token works as a
// Bearer, and after dismissing (or reloading) the secret is nowhere on the page; revoking it
// takes effect at once.
//
//   STATOR_BIN=/path/to/stator node --test tests/browser/tokens.test.mjs
//
// Needs the UI built (`npm run build` in ui/) and a headless stator binary built after it.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { ROOT, findBinary, freePort, waitFor } from '../support/util.mjs'

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const PASSWORD = 'superuser-pass-1'
const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots')

let bin, tmp, env, cfgPath, dbPath, base, server, serverLog = '', browser, page

function stator(args, input) {
  const r = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, ...args], { input, env, encoding: 'utf8', timeout: 30000 })
  assert.equal(r.status, 0, `stator ${args.join(' ')} failed: ${r.stderr}${r.stdout}`)
  return r.stdout
}

async function me(token) {
  const res = await fetch(base + '/api/me', { headers: { Authorization: `Bearer ${token}` } })
  return res.status
}

describe('API token screen', () => {
  before(async () => {
    bin = findBinary()
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), 'build the UI first')
    fs.mkdirSync(SHOTS, { recursive: true })
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-tokens-'))
    env = { ...process.env, STATOR_SECRET_BACKEND: 'file', STATOR_SECRETS_DB: path.join(tmp, 'secrets.enc') }
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    cfgPath = path.join(tmp, 'config.json')
    dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify({
      plc_config: [{ id: 'alpha', url: 'opc.tcp://127.0.0.1:9', name: 'Alpha' }],
      common_root_node_id: 'ns=4;i=2',
      broadcast_interval_seconds: 0.5,
      plc_reconnect_delay_minutes: 1,
      remote: { listen: `127.0.0.1:${port}` },
    }))
    stator(['user', 'add', 'sue', '--role', 'superuser', '--password-stdin'], PASSWORD + '\n')
    server = spawn(bin, ['--config', cfgPath, '--db', dbPath, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    server.stdout.on('data', (d) => (serverLog += d))
    server.stderr.on('data', (d) => (serverLog += d))
    await waitFor('GET /health', async () => (await fetch(`${base}/health`)).ok, 60000, 250).catch((e) => {
      throw new Error(`${e.message}\n--- server log ---\n${serverLog.slice(-4000)}`)
    })
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] })
    page = await (await browser.newContext({ viewport: { width: 1280, height: 400 } })).newPage()
    page.setDefaultTimeout(15000)
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

  it('shows a new token secret once, and revokes it', async () => {
    await page.getByTestId('login-screen').waitFor()
    await page.getByTestId('mode-password').click()
    await page.getByTestId('login-username').fill('sue')
    await page.getByTestId('login-password').fill(PASSWORD)
    await page.getByTestId('login-submit').click()
    await page.getByTestId('session-bar').waitFor()
    await page.getByTestId('nav-admin').click()
    await page.getByTestId('tab-tokens').click()
    await page.getByTestId('tokens-panel').waitFor()

    await page.getByTestId('token-name').fill('historian gateway')
    await page.getByTestId('token-password').fill(PASSWORD)
    await page.getByTestId('token-create').click()
    const secret = (await page.getByTestId('token-secret').innerText()).trim()
    assert.match(secret, /^stator_\d+_[A-Za-z0-9_-]{43}$/)
    assert.equal(await me(secret), 200, 'the shown token works as a Bearer')
    // The password field is cleared, the list has the token without its secret.
    assert.equal(await page.getByTestId('token-password').inputValue(), '')
    const id = secret.split('_')[1]
    const row = page.getByTestId(`token-row-${id}`)
    await row.waitFor()
    assert.ok((await row.innerText()).includes('historian gateway'))
    assert.ok(!(await page.getByTestId('tokens-table').innerText()).includes(secret.slice(-43)))

    // Dismissed: gone from the page, and it never comes back (also not after a reload).
    await page.getByTestId('token-secret-dismiss').click()
    await page.getByTestId('token-secret-box').waitFor({ state: 'detached' })
    assert.ok(!(await page.content()).includes(secret.slice(-43)))
    await page.reload()
    await page.getByTestId('tokens-panel').waitFor()
    await page.getByTestId(`token-row-${id}`).waitFor()
    assert.ok(!(await page.content()).includes(secret.slice(-43)))
    assert.equal(await page.getByTestId('token-secret-box').count(), 0)

    // Revoke: confirmed in a dialog; the token is dead at once.
    page.once('dialog', (d) => d.accept())
    await page.getByTestId(`token-revoke-${id}`).click()
    await waitFor('token refused after revoke', async () => (await me(secret)) === 401, 5000, 100)
    await page.getByTestId(`token-revoke-${id}`).waitFor({ state: 'detached' })
    await page.screenshot({ path: path.join(SHOTS, 'tokens-list.png') })
  })

  it('shows the configuration and an invalid change with its JSON path', async () => {
    await page.getByTestId('tab-config').click()
    await page.getByTestId('config-panel').waitFor()
    await page.screenshot({ path: path.join(SHOTS, 'config-form.png') })
    await page.getByTestId('config-raw').click()
    const json = JSON.parse(await page.getByTestId('config-json').inputValue())
    assert.equal(json.plc_config[0].id, 'alpha')
    json.plc_config[0].url = 'http://10.0.0.1'
    await page.getByTestId('config-json').fill(JSON.stringify(json, null, 2))
    await page.getByTestId('config-password').fill(PASSWORD)
    await page.getByTestId('config-save').click()
    const msg = page.getByTestId('config-msg')
    await msg.waitFor()
    assert.match(await msg.innerText(), /\$\.plc_config\[0\]\.url/)
    const onDisk = JSON.parse(fs.readFileSync(cfgPath, 'utf8'))
    assert.equal(onDisk.plc_config[0].url, 'opc.tcp://127.0.0.1:9', 'nothing written')
  })

  it('adds an alarm in the form and saves it: written, applied, listed again after a reload', async () => {
    await page.reload()
    await page.getByTestId('config-panel').waitFor()
    const form = page.getByTestId('config-alarms')
    await page.getByTestId('alarm-form-id').fill('alpha_p_high')
    await page.getByTestId('alarm-form-tag').fill('alpha/Active_Power_kW')
    await page.getByTestId('alarm-form-condition').selectOption('high')
    await page.getByTestId('alarm-form-threshold').fill('1100')
    await page.getByTestId('alarm-form-priority').selectOption('high')
    await page.getByTestId('alarm-form-message').fill('Power above 1100 kW')
    await page.getByTestId('alarm-form-set').click()
    await form.getByRole('button', { name: 'alpha_p_high' }).waitFor()
    await page.getByTestId('config-password').fill(PASSWORD)
    await page.getByTestId('config-save').click()
    const msg = page.getByTestId('config-msg')
    await waitFor('saved', async () => /Saved/.test(await msg.innerText().catch(() => '')), 10000, 100)
    const onDisk = JSON.parse(fs.readFileSync(cfgPath, 'utf8'))
    assert.deepEqual(onDisk.alarms, [{ id: 'alpha_p_high', tag: 'alpha/Active_Power_kW', condition: 'high', priority: 'high', limit: 1100, message: 'Power above 1100 kW' }])
    await page.reload()
    await page.getByTestId('config-alarms').getByRole('button', { name: 'alpha_p_high' }).waitFor()
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
    assert.equal(overflow, false, 'the form fits 1280 px')
    await page.screenshot({ path: path.join(SHOTS, 'config-alarms.png') })
  })
})
