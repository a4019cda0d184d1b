// The Tauri transport against Tauri's own IPC mock (@tauri-apps/api/mocks): the exact command
// name and arguments the desktop shell must accept, and the event names it must emit.
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { TauriTransport } from './transport'
import type { SnapshotMsg, UpdateMsg } from './protocol'

beforeAll(() => {
  ;(globalThis as unknown as { window: unknown }).window = globalThis
})

async function until<T>(what: string, f: () => T | undefined | null | false, ms = 2000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = f()
    if (v) return v
    if (Date.now() > end) throw new Error(`timeout: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('tauri transport', () => {
  afterEach(async () => {
    const { clearMocks } = await import('@tauri-apps/api/mocks')
    clearMocks()
  })

  it("calls invoke('api', {request, token}) with the dispatcher's op objects and maps errors", async () => {
    const { mockIPC } = await import('@tauri-apps/api/mocks')
    const calls: { cmd: string; args: Record<string, unknown> }[] = []
    mockIPC((cmd, args) => {
      calls.push({ cmd, args: args as Record<string, unknown> })
      const req = (args as { request: { op: string } }).request
      if (req.op === 'login_pin' || req.op === 'first_superuser') return { token: 'T1', expires_at: 'x', user: { username: 'op', role: 'operator', parks: ['a'] } }
      if (req.op === 'write') throw { code: 'forbidden', message: 'role viewer may not write' }
      if (req.op === 'users_list') return { ok: false, error: { code: 'forbidden', message: 'no' } }
      return { pong: true }
    })
    const tr = new TauriTransport()
    const r = await tr.login({ username: 'op', pin: '1234' })
    expect(r.token).toBe('T1')
    expect(calls[0]).toEqual({ cmd: 'api', args: { request: { op: 'login_pin', username: 'op', pin: '1234' }, token: null } })
    await expect(tr.request({ op: 'ping' })).resolves.toEqual({ pong: true })
    expect(calls[1]).toEqual({ cmd: 'api', args: { request: { op: 'ping' }, token: 'T1' } })
    await expect(tr.request({ op: 'write', plc: 'a', node: 'SP', value: 1 })).rejects.toMatchObject({ code: 'forbidden', message: 'role viewer may not write' })
    await expect(tr.request({ op: 'users_list' })).rejects.toMatchObject({ code: 'forbidden' })
    await tr.setup('root', 'secret-password')
    expect(calls.at(-1)?.args.request).toEqual({ op: 'first_superuser', username: 'root', password: 'secret-password' })
    await tr.logout()
    expect(calls.at(-1)?.args.request).toEqual({ op: 'logout' })
  })

  it('takes a snapshot via invoke, then live-update / live-snapshot / session-ended events', async () => {
    const { mockIPC } = await import('@tauri-apps/api/mocks')
    const snap: SnapshotMsg = { type: 'snapshot', seq: 3, plcs: [] }
    mockIPC((_cmd, args) => ((args as { request: { op: string } }).request.op === 'snapshot' ? snap : {}), { shouldMockEvents: true })
    const { emit } = await import('@tauri-apps/api/event')
    const got: string[] = []
    const tr = new TauriTransport()
    tr.startLive('T2', {
      snapshot: (m) => got.push(`snapshot:${m.seq}`),
      update: (m: UpdateMsg) => got.push(`update:${m.seq}`),
      ended: (code, reason) => got.push(`ended:${code}:${reason}`),
    })
    await until('initial snapshot', () => got.includes('snapshot:3'))
    await emit('live-update', { type: 'update', seq: 4, plcs: [] })
    await emit('live-snapshot', { type: 'snapshot', seq: 9, plcs: [] })
    await emit('session-ended', { code: 4001, reason: 'revoked' })
    await until('events', () => got.length === 4)
    expect(got).toEqual(['snapshot:3', 'update:4', 'snapshot:9', 'ended:4001:revoked'])
    tr.stopLive()
    await emit('live-update', { type: 'update', seq: 5, plcs: [] })
    await new Promise((r) => setTimeout(r, 20))
    expect(got).toHaveLength(4)
  })
})
