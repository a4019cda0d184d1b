// End-to-end test of kiosk mode: the real `stator --demo --kiosk` (feature `desktop`) driven
// through tauri-driver under Xvfb. The window must cover the screen; an operator may not leave;
// an admin's password ends the app, and the audit trail says so (`kiosk_exit`, source `panel`).
//
//   xvfb-run -a env STATOR_BIN=/path/to/stator node --test tests/desktop/
//
// Harness: tests/support/desktop.mjs. Screenshots go to tests/artifacts/screenshots/kiosk-*.png.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { waitFor } from '../support/util.mjs'
import { startDesktop } from '../support/desktop.mjs'

const OPERATOR = { name: 'kioskop', password: 'kiosk-operator-1', role: 'operator' }
const ADMIN = { name: 'kioskadm', password: 'kiosk-admin-1', role: 'admin' }

let app

/** Stator processes started with this test's config file (the app under test). */
function appProcesses() {
  const found = []
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      if (args.includes(app.cfgPath) && args.includes('--kiosk')) found.push(Number(pid))
    } catch {
      /* gone meanwhile */
    }
  }
  return found
}

async function attemptExit(user) {
  await app.click('kiosk-exit')
  await app.waitElement('kiosk-prompt')
  await app.type('kiosk-username', user.name)
  await app.type('kiosk-password', user.password)
  await app.click('kiosk-submit')
}

describe('desktop kiosk mode (Tauri, --kiosk)', () => {
  before(async () => {
    app = await startDesktop({ users: [OPERATOR, ADMIN], args: ['--kiosk'], prefix: 'kiosk' })
  })

  after(async () => {
    await app?.stop()
  })

  it('opens fullscreen (the window covers the screen) with an Exit kiosk button', async () => {
    await app.waitElement('login-screen', 60000)
    const btn = await app.waitElement('kiosk-exit')
    const btnRect = await app.call('GET', app.s(`/element/${btn}/rect`))
    assert.ok(btnRect.height >= 48, `Exit kiosk button is ${btnRect.height} px high`)
    const screen = await app.call('POST', app.s('/execute/sync'), { script: 'return [screen.width, screen.height]', args: [] })
    assert.ok(screen[0] > 0 && screen[1] > 0, `screen ${screen}`)
    const rect = await waitFor('the window to cover the screen', async () => {
      const r = await app.call('GET', app.s('/window/rect'))
      return r.x <= 0 && r.y <= 0 && r.width >= screen[0] && r.height >= screen[1] && r
    }, 20000)
    assert.notEqual(`${rect.width}x${rect.height}`, '1280x400', 'not the windowed default size')
    await app.shot('01-login')
  })

  it("refuses an operator's exit attempt and shows why", async () => {
    await attemptExit(OPERATOR)
    await app.waitElement('kiosk-error')
    assert.match(await app.text('kiosk-error'), /only an admin or superuser may leave kiosk mode/)
    await app.shot('02-refused')
    assert.ok(appProcesses().length > 0, 'the app still runs')
    // A wrong admin password is refused too, with its own reason.
    await app.type('kiosk-username', ADMIN.name)
    await app.type('kiosk-password', 'not-the-password')
    await app.click('kiosk-submit')
    await waitFor('the invalid-credentials reason', async () => /Wrong user name or password/.test(await app.text('kiosk-error')))
    await app.click('kiosk-cancel')
    await waitFor('the prompt to close', async () => {
      const v = await app.call('POST', app.s('/elements'), { using: 'css selector', value: '[data-testid="kiosk-prompt"]' })
      return v.length === 0
    })
    assert.ok(appProcesses().length > 0, 'the app still runs')
  })

  it("ends the app on an admin's password, audited as kiosk_exit from the panel", async () => {
    assert.ok(appProcesses().length > 0, 'the app runs before the exit')
    await attemptExit(ADMIN)
    await waitFor('the app process to end', () => appProcesses().length === 0, 20000)
    // The WebDriver session has lost its application.
    await assert.rejects(app.call('GET', app.s('/title'), undefined, 10000))
    const audit = app.stator(['audit', 'export'])
    assert.equal(audit.status, 0, audit.stderr)
    const rows = audit.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
    const exits = rows.filter((r) => r.action === 'kiosk_exit')
    assert.equal(exits.length, 1, `one kiosk_exit row: ${JSON.stringify(exits)}`)
    assert.equal(exits[0].source, 'panel')
    assert.equal(exits[0].actor, ADMIN.name)
  })
})
