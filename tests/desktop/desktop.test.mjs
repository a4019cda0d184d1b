// End-to-end test of the desktop window: the real `stator --demo` (feature `desktop`, Tauri +
// WebKitGTK) driven through tauri-driver and Debian's WebKitWebDriver, under Xvfb.
//
//   xvfb-run -a env STATOR_BIN=/path/to/stator node --test tests/desktop/
//
// Harness: tests/support/desktop.mjs. Screenshots go to tests/artifacts/screenshots/desktop-*.png.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { waitFor } from '../support/util.mjs'
import { PARKS, startDesktop } from '../support/desktop.mjs'

const USER = { name: 'panelop', password: 'panel-operator-1', role: 'operator' }
const SETPOINT = 'SP_Power_Limit_kW'

let app

async function http(method, p, token, body) {
  const res = await fetch(app.httpBase + p, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const t = await res.text()
  return { status: res.status, body: t ? JSON.parse(t) : null }
}

describe('desktop window (Tauri) against its own --demo simulator', () => {
  before(async () => {
    app = await startDesktop({ users: [USER], prefix: 'desktop' })
  })

  after(async () => {
    await app?.stop()
  })

  it('opens the panel window at 1280 x 400 on the login screen', async () => {
    await app.waitElement('login-screen', 60000)
    const rect = await app.call('GET', app.s('/window/rect'))
    assert.equal(rect.width, 1280)
    assert.equal(rect.height, 400)
    await app.shot('01-login')
  })

  it('logs in through the Tauri command and shows both parks', async () => {
    await app.click('mode-password')
    await app.type('login-username', USER.name)
    await app.type('login-password', USER.password)
    await app.click('login-submit')
    await app.waitElement('session-bar')
    assert.match(await app.text('session-user'), new RegExp(USER.name))
    for (const id of PARKS) await app.waitElement(`park-card-${id}`)
    await waitFor('both parks CONNECTED', async () => {
      for (const id of PARKS) {
        const el = await app.waitElement(`plc-state-${id}`)
        if ((await app.call('GET', app.s(`/element/${el}/attribute/data-status`))) !== 'CONNECTED') return false
      }
      return true
    }, 60000)
    await app.waitElement('tag-value')
    await app.shot('02-overview')
  })

  it('sees a live value change (Tauri events)', async () => {
    await app.click(`park-card-${PARKS[0]}`)
    await app.waitElement('park-screen')
    const row = 'tag-row-Heartbeat_ms'
    const first = await waitFor('a heartbeat value', async () => {
      const t = await app.text(row)
      return /\d/.test(t) && t
    })
    await waitFor('the heartbeat to change', async () => (await app.text(row)) !== first, 20000)
    await app.shot('03-park')
  })

  it('writes a setpoint with confirm and read-back', async () => {
    await app.click(`tag-row-${SETPOINT}`)
    await app.waitElement('tag-screen')
    const before = await app.text('tag-value')
    const next = /\b750\b/.test(before) ? 650 : 750
    await app.click('write-start')
    const pad = await app.waitElement('numpad')
    for (const ch of String(next)) {
      const key = await app.findIn(pad, `[data-key="${ch}"]`)
      await app.call('POST', app.s(`/element/${key}/click`), {})
    }
    await app.click('write-review')
    await app.waitElement('write-confirm')
    assert.match(await app.text('confirm-new'), new RegExp(String(next)))
    await app.click('write-confirm-btn')
    const result = await app.waitElement('write-result')
    const ok = await app.call('GET', app.s(`/element/${result}/attribute/data-ok`))
    assert.equal(ok, 'true', await app.text('write-result'))
    assert.match(await app.text('write-result'), new RegExp(String(next)))
    await app.shot('04-write-done')

    // Independent read-back: the same process's remote server, as another client would see it.
    const { body: lg } = await http('POST', '/api/login', null, { username: USER.name, password: USER.password })
    await waitFor('the written value in the snapshot', async () => {
      const snap = (await http('GET', '/api/snapshot', lg.token)).body
      const n = snap.plcs.find((p) => p.id === PARKS[0]).nodes.find((x) => x.name === SETPOINT)
      return Math.abs(Number(n.value) - next) < 1e-3
    })
    // The panel write is in the audit trail with source "panel".
    const audit = app.stator(['audit', 'export'])
    assert.equal(audit.status, 0, audit.stderr)
    const rows = audit.stdout.trim().split('\n').map((l) => JSON.parse(l))
    assert.ok(rows.some((r) => r.source === 'panel' && /write/.test(r.action) && String(r.target).includes(SETPOINT)), 'a panel write row in the audit trail')
  })
})
