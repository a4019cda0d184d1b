// The browser transport against real sockets: a node:http server for /api/* and a `ws`
// WebSocket server for /ws (the `ws` client stands in for the browser's WebSocket).
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket as WsClient, WebSocketServer, type WebSocket as WsSocket } from 'ws'
import { ApiError, decodeServerMsg, encodeRequest, toApiError } from './protocol'
import { BrowserTransport, backoffMs, loginRequest, unwrapReply } from './transport'

beforeAll(() => {
  ;(globalThis as unknown as { WebSocket: unknown }).WebSocket = WsClient
})

async function until<T>(what: string, f: () => T | undefined | null | false, ms = 3000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = f()
    if (v) return v
    if (Date.now() > end) throw new Error(`timeout: ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('message encoding', () => {
  it('encodes requests as {"id":N,"op":…} with the fields of the op', () => {
    expect(encodeRequest(7, { op: 'write', plc: 'eco_solar', node: 'CMD_Instant_Cutoff[3]', value: true })).toBe(
      '{"id":7,"op":"write","plc":"eco_solar","node":"CMD_Instant_Cutoff[3]","value":true}',
    )
    expect(JSON.parse(encodeRequest(1, { op: 'ping' }))).toEqual({ id: 1, op: 'ping' })
  })

  it('builds the login ops', () => {
    expect(loginRequest({ username: 'a', password: 'b' })).toEqual({ op: 'login', username: 'a', password: 'b' })
    expect(loginRequest({ username: 'a', pin: '1234' })).toEqual({ op: 'login_pin', username: 'a', pin: '1234' })
    expect(loginRequest({ badge: 'B1' })).toEqual({ op: 'login_badge', badge: 'B1' })
  })

  it('decodes server frames and drops malformed ones', () => {
    expect(decodeServerMsg('{"type":"reply","id":1,"ok":true,"result":{}}')).toMatchObject({ type: 'reply', id: 1 })
    expect(decodeServerMsg('not json')).toBeNull()
    expect(decodeServerMsg('[1,2]')).toBeNull()
    expect(decodeServerMsg('{"id":1}')).toBeNull()
  })

  it('maps every error shape to a code', () => {
    expect(toApiError({ code: 'forbidden', message: 'no' })).toMatchObject({ code: 'forbidden', message: 'no' })
    expect(toApiError({ error: 'invalid_credentials' }).code).toBe('invalid_credentials')
    expect(toApiError({ error: 'locked', retry_after_s: 120 })).toMatchObject({ code: 'locked', retryAfterS: 120 })
    expect(toApiError({ error: { code: 'invalid', message: 'out of range 0..100 kW' } }).message).toBe('out of range 0..100 kW')
    expect(toApiError('{"code":"not_found","message":"x"}').code).toBe('not_found')
    expect(toApiError('boom').code).toBe('internal')
    expect(toApiError({ code: 'forbidden', message: 'forbidden: role admin may not write_tags' }).message).toBe('role admin may not write_tags')
  })

  it('unwraps reply envelopes', () => {
    expect(unwrapReply({ ok: true, result: { a: 1 } })).toEqual({ a: 1 })
    expect(() => unwrapReply({ ok: false, error: { code: 'forbidden', message: 'm' } })).toThrow(ApiError)
    expect(unwrapReply({ token: 't' })).toEqual({ token: 't' })
  })

  it('backs off exponentially with a cap', () => {
    const mid = () => 0.5
    expect(backoffMs(0, mid)).toBe(500)
    expect(backoffMs(1, mid)).toBe(1000)
    expect(backoffMs(3, mid)).toBe(4000)
    expect(backoffMs(20, mid)).toBe(15000)
    expect(backoffMs(0, () => 0)).toBe(400)
    expect(backoffMs(0, () => 1)).toBe(600)
  })
})

describe('browser transport over real sockets', () => {
  let server: http.Server
  let wss: WebSocketServer
  let conns: { ws: WsSocket; protocol: string; frames: string[] }[]
  let httpLog: { method: string; url: string; auth?: string; type?: string; body: string }[]
  let base: string
  let onConnect: (ws: WsSocket) => void

  async function start() {
    conns = []
    httpLog = []
    server = http.createServer(async (req, res) => {
      let body = ''
      for await (const c of req) body += c
      httpLog.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, type: req.headers['content-type'], body })
      if (req.url === '/api/setup') {
        const b = JSON.parse(body)
        if (b.setup_code !== 'K7QM-2XWD-9RTA') {
          res.writeHead(403, { 'Content-Type': 'application/json' })
          return res.end('{"error":"forbidden","message":"wrong or missing setup code"}')
        }
        res.writeHead(200, { 'Content-Type': 'application/json' })
        return res.end(JSON.stringify({ token: 'tok-root', expires_at: 'x', user: { username: b.username, role: 'superuser', parks: [] } }))
      }
      if (req.url === '/api/login') {
        const b = JSON.parse(body)
        if (b.password !== 'right') {
          res.writeHead(423, { 'Content-Type': 'application/json' })
          return res.end('{"error":"locked","retry_after_s":300}')
        }
        res.writeHead(200, { 'Content-Type': 'application/json' })
        return res.end(JSON.stringify({ token: 'tok123', expires_at: 'x', idle_timeout_s: 1800, user: { username: b.username, role: 'operator', parks: ['a'] } }))
      }
      if (req.url === '/api/logout') {
        res.writeHead(204)
        return res.end()
      }
      res.writeHead(404)
      res.end()
    })
    wss = new WebSocketServer({ server, handleProtocols: (p) => (p.has('stator.v1.compact') ? 'stator.v1.compact' : p.has('bearer') ? 'bearer' : false) })
    wss.on('connection', (ws, req) => {
      const c = { ws, protocol: String(req.headers['sec-websocket-protocol']), frames: [] as string[] }
      conns.push(c)
      ws.on('message', (d) => c.frames.push(String(d)))
      onConnect(ws)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  afterEach(async () => {
    for (const c of conns ?? []) c.ws.terminate()
    await new Promise((r) => wss?.close(r))
    await new Promise((r) => server?.close(r))
  })

  it('with the compact option offers stator.v1.compact and hands on compact updates in the JSON shape', async () => {
    const node = (name: string) => ({ name, node_id: name, type: 'Float', value: 0, quality: 'good', ts: null, writable: false })
    onConnect = (ws) => {
      ws.send(JSON.stringify({ type: 'snapshot', seq: 1, plcs: [{ id: 'a', name: 'A', url: '', status: 'CONNECTED', nodes: [node('P'), node('Q')] }] }))
      ws.send(JSON.stringify({ type: 'update', seq: 2, plcs: [{ id: 'a', status: 'CONNECTED', c: [[1, 2.5, 't1'], [0, null, null, 'bad', 'no_value']] }] }))
    }
    await start()
    const tr = new BrowserTransport(base, base.replace('http', 'ws') + '/ws', { compact: true })
    const updates: unknown[] = []
    tr.startLive('tok', { snapshot: () => {}, update: (m) => updates.push(m), ended: () => {} })
    await until('update', () => updates.length === 1)
    expect(conns[0].protocol.split(',').map((s) => s.trim())).toEqual(['stator.v1.compact', 'bearer', 'tok'])
    expect(updates[0]).toEqual({
      type: 'update',
      seq: 2,
      plcs: [
        {
          id: 'a',
          status: 'CONNECTED',
          error: undefined,
          rediscovered: undefined,
          changes: [
            { name: 'Q', value: 2.5, ts: 't1', quality: 'good', reason: null },
            { name: 'P', value: null, ts: null, quality: 'bad', reason: 'no_value' },
          ],
        },
      ],
    })
  })

  it('logs in over HTTP, opens /ws with the bearer subprotocol, gets snapshot + update, matches replies', async () => {
    onConnect = (ws) => {
      ws.send(JSON.stringify({ type: 'snapshot', seq: 1, plcs: [] }))
      ws.send(JSON.stringify({ type: 'update', seq: 2, plcs: [] }))
      ws.on('message', (d) => {
        const m = JSON.parse(String(d))
        if (m.op === 'write') ws.send(JSON.stringify({ type: 'reply', id: m.id, ok: true, result: { value: m.value } }))
        else ws.send(JSON.stringify({ type: 'reply', id: m.id, ok: false, error: { code: 'forbidden', message: 'not for you' } }))
      })
    }
    await start()
    const tr = new BrowserTransport(base, base.replace('http', 'ws') + '/ws')
    await expect(tr.login({ username: 'op', password: 'wrong' })).rejects.toMatchObject({ code: 'locked', retryAfterS: 300 })
    const r = await tr.login({ username: 'op', password: 'right' })
    expect(r.token).toBe('tok123')
    expect(JSON.parse(httpLog[1].body)).toEqual({ username: 'op', password: 'right' })

    const got: string[] = []
    tr.startLive(r.token, { snapshot: (m) => got.push(`snapshot:${m.seq}`), update: (m) => got.push(`update:${m.seq}`), ended: () => got.push('ended') })
    await until('online', () => tr.link.value === 'online')
    // Browsers send "bearer, tok123"; the `ws` client omits the space.
    expect(conns[0].protocol.split(',').map((s) => s.trim())).toEqual(['bearer', 'tok123'])
    await until('two messages', () => got.length === 2)
    expect(got).toEqual(['snapshot:1', 'update:2'])

    await expect(tr.request({ op: 'write', plc: 'a', node: 'SP', value: 5 })).resolves.toEqual({ value: 5 })
    await expect(tr.request({ op: 'users_list' })).rejects.toMatchObject({ code: 'forbidden', message: 'not for you' })
    expect(JSON.parse(conns[0].frames[0])).toEqual({ id: 1, op: 'write', plc: 'a', node: 'SP', value: 5 })

    await tr.logout()
    expect(httpLog.at(-1)).toMatchObject({ method: 'POST', url: '/api/logout', auth: 'Bearer tok123' })
    expect(tr.link.value).toBe('offline')
  })

  it('sends the first superuser as JSON with the one-time setup code', async () => {
    onConnect = () => {}
    await start()
    const tr = new BrowserTransport(base, base.replace('http', 'ws') + '/ws')
    await expect(tr.setup('root', 'secret-password')).rejects.toMatchObject({ code: 'forbidden' })
    const r = await tr.setup('root', 'secret-password', 'K7QM-2XWD-9RTA')
    expect(r.token).toBe('tok-root')
    expect(httpLog.map((h) => [h.method, h.url, h.type])).toEqual([
      ['POST', '/api/setup', 'application/json'],
      ['POST', '/api/setup', 'application/json'],
    ])
    expect(JSON.parse(httpLog[1].body)).toEqual({ username: 'root', password: 'secret-password', setup_code: 'K7QM-2XWD-9RTA' })
  })

  it('reconnects after a drop but not after close 4001 (revoked), which ends the session', async () => {
    onConnect = (ws) => ws.send(JSON.stringify({ type: 'snapshot', seq: conns.length, plcs: [] }))
    await start()
    const tr = new BrowserTransport(base, base.replace('http', 'ws') + '/ws')
    const ended: string[] = []
    let snaps = 0
    tr.startLive('tok', { snapshot: () => snaps++, update: () => {}, ended: (code, reason) => ended.push(`${code}:${reason}`) })
    await until('first snapshot', () => snaps === 1)
    conns[0].ws.close(1011, 'server restart')
    await until('reconnected snapshot', () => snaps === 2, 5000)
    expect(conns).toHaveLength(2)
    conns[1].ws.close(4001, 'revoked')
    await until('ended', () => ended.length === 1)
    expect(ended).toEqual(['4001:revoked'])
    expect(tr.link.value).toBe('offline')
    await new Promise((r) => setTimeout(r, 800))
    expect(conns).toHaveLength(2)
    tr.stopLive()
  })

  it('holds a request while the socket is connecting, then sends it', async () => {
    onConnect = (ws) => ws.on('message', (d) => {
      const m = JSON.parse(String(d))
      ws.send(JSON.stringify({ type: 'reply', id: m.id, ok: true, result: { users: [] } }))
    })
    await start()
    const tr = new BrowserTransport(base, base.replace('http', 'ws') + '/ws')
    tr.startLive('tok', { snapshot: () => {}, update: () => {}, ended: () => {} })
    expect(tr.link.value).toBe('connecting')
    await expect(tr.request({ op: 'users_list' })).resolves.toEqual({ users: [] })
    tr.stopLive()
  })

  it('fails pending requests when the connection drops', async () => {
    onConnect = () => {}
    await start()
    const tr = new BrowserTransport(base, base.replace('http', 'ws') + '/ws')
    tr.startLive('tok', { snapshot: () => {}, update: () => {}, ended: () => {} })
    await until('online', () => tr.link.value === 'online')
    const p = tr.request({ op: 'ping' })
    await until('frame', () => conns[0].frames.length === 1)
    conns[0].ws.terminate()
    await expect(p).rejects.toMatchObject({ code: 'not_connected' })
    tr.stopLive()
  })
})
