// Messages in a real browser: two people in two browser contexts (1280 x 400) exchange a direct
// message through the real `stator serve` — delivery pushed over the WebSocket, the unread badge,
// the read receipt, canned phrases, and text shown as text (no HTML injection).
//
//   STATOR_BIN=/path/to/stator node --test tests/browser/messages.test.mjs
//
// Needs the UI built (`npm run build` in ui/) and a headless stator binary.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { ROOT, findBinary, freePort, waitFor } from '../support/util.mjs'

const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots')
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const VIEWPORT = { width: 1280, height: 400 }
const USERS = { ann: 'ann-password-1', bob: 'bob-password-1' }

let bin, tmp, cfgPath, dbPath, base, server, serverLog = '', browser
const pageErrors = []

function stator(args, input) {
  const r = spawnSync(bin, ['--config', cfgPath, '--db', dbPath, ...args], { input, cwd: ROOT, encoding: 'utf8', timeout: 30000 })
  assert.equal(r.status, 0, `stator ${args.join(' ')} failed: ${r.stderr}${r.stdout}`)
}

async function person(name) {
  const ctx = await browser.newContext({ viewport: VIEWPORT })
  const page = await ctx.newPage()
  page.setDefaultTimeout(15000)
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`))
  page.on('dialog', (d) => {
    pageErrors.push(`${name}: dialog ${d.message()}`)
    void d.dismiss()
  })
  await page.goto(base + '/')
  await page.getByTestId('login-screen').waitFor()
  await page.getByTestId('mode-password').click()
  await page.getByTestId('login-username').fill(name)
  await page.getByTestId('login-password').fill(USERS[name])
  await page.getByTestId('login-submit').click()
  await page.getByTestId('session-bar').waitFor()
  return page
}

/** Nothing of the page scrolls sideways or spills out of the 1280 x 400 viewport. */
async function fits(page) {
  const o = await page.evaluate(() => ({ w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight }))
  assert.ok(o.w <= VIEWPORT.width && o.h <= VIEWPORT.height, `overflow ${JSON.stringify(o)}`)
}

describe('messages between two browsers', () => {
  before(async () => {
    bin = findBinary()
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), 'build the UI first')
    fs.mkdirSync(SHOTS, { recursive: true })
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stator-msg-'))
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.json'), 'utf8'))
    cfg.remote = { ...(cfg.remote ?? {}), listen: `127.0.0.1:${port}` }
    cfgPath = path.join(tmp, 'config.json')
    dbPath = path.join(tmp, 'stator.db')
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))
    const park = cfg.plc_config[0].id
    for (const [name, pw] of Object.entries(USERS))
      stator(['user', 'add', name, '--role', 'operator', '--parks', park, '--password-stdin'], pw + '\n')
    server = spawn(bin, ['--config', cfgPath, '--db', dbPath, 'serve'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    server.stdout.on('data', (d) => (serverLog += d))
    server.stderr.on('data', (d) => (serverLog += d))
    await waitFor('GET /health', async () => (await fetch(`${base}/health`)).ok, 60000, 250).catch((e) => {
      throw new Error(`${e.message}\n--- server log ---\n${serverLog.slice(-4000)}`)
    })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    })
  })

  after(async () => {
    await browser?.close()
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r))
      server.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))])
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('ann writes to bob, bob sees it at once with a badge, reads it, ann sees the receipt', async () => {
    const ann = await person('ann')
    const bob = await person('bob')

    await ann.getByTestId('nav-messages').click()
    await ann.getByTestId('messages-screen').waitFor()
    await ann.getByTestId('msg-new').click()
    await ann.getByTestId('prompt-input').fill('bob')
    await ann.getByTestId('keyboard').locator('[data-key="done"]').click()
    await assert.doesNotReject(ann.getByTestId('thread-title').filter({ hasText: 'bob' }).waitFor())

    // Markup in a message is text, never HTML.
    const text = 'Pump 3 trips <img src=x onerror=alert(1)> <b>bold</b>'
    await ann.getByTestId('msg-input').fill(text)
    await ann.getByTestId('msg-send').click()
    await ann.getByTestId('msg-text').filter({ hasText: 'Pump 3 trips' }).waitFor()

    // Bob is on the overview: the badge counts it (pushed over his WebSocket).
    await waitFor('the unread badge on bob\'s bar', async () => (await bob.getByTestId('unread-badge').textContent())?.trim() === '1')
    await bob.getByTestId('nav-messages').click()
    await bob.getByTestId('conv-ann').click()
    const shown = bob.getByTestId('msg-text').filter({ hasText: 'Pump 3 trips' })
    await shown.waitFor()
    assert.equal(await shown.textContent(), text)
    assert.equal(await bob.locator('[data-testid="thread"] img, [data-testid="thread"] b').count(), 0)
    await waitFor('the badge to clear', async () => (await bob.getByTestId('unread-badge').count()) === 0)

    // Ann sees the read receipt.
    await waitFor('the read mark on ann\'s message', async () => {
      const marks = await ann.locator('[data-testid^="state-"]').allTextContents()
      return marks.some((m) => m.includes('✓✓'))
    })

    // Bob answers with a canned phrase; it reaches ann's open thread at once.
    const phrase = bob.getByTestId('phrases').locator('button').first()
    const phraseText = (await phrase.textContent()).trim()
    await phrase.click()
    await ann.getByTestId('msg-text').filter({ hasText: phraseText }).waitFor()

    await fits(ann)
    await ann.screenshot({ path: path.join(SHOTS, 'messages.png') })
    await ann.getByTestId('msg-kbd').click()
    await ann.getByTestId('keyboard').waitFor()
    await fits(ann)
    await ann.screenshot({ path: path.join(SHOTS, 'messages-keyboard.png') })

    await bob.getByTestId('nav-logbook').click()
    await bob.getByTestId('logbook-screen').waitFor()
    await fits(bob)
    assert.deepEqual(pageErrors, [])
  })
})
