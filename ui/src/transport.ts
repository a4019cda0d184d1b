// The one module that knows how the UI talks to the core. Every screen calls `transport`; it
// never sees whether that is a remote browser (HTTP `/api/*` + WebSocket `/ws`) or the Tauri
// window (`invoke('api', {request, token})` + events `live-snapshot` / `live-update`).

import { ref, watch, type Ref } from 'vue'
import {
  ApiError,
  decodeServerMsg,
  encodeRequest,
  toApiError,
  type Health,
  type LoginResult,
  type MeReply,
  type ReplyMsg,
  type Request,
  type SnapshotMsg,
  type UpdateMsg,
} from './protocol'
import { COMPACT_PROTOCOL, expandCompact, tagNames, type TagNames } from './compact'
import { deliverPush, type PushMsg } from './pushes'

/** Connection of this UI to the core: WebSocket state in a browser, always `online` in Tauri. */
export type LinkState = 'offline' | 'connecting' | 'online'

export interface LiveHandlers {
  snapshot(msg: SnapshotMsg): void
  update(msg: UpdateMsg): void
  /** The server ended the session (close 4001: expired or revoked); no reconnect follows. */
  ended(code: number, reason: string): void
}

export type Credentials =
  | { username: string; password: string }
  | { username: string; pin: string }
  | { badge: string }

/** Reply of `me` (the wire type, checked against the Rust one). */
export type MeResult = MeReply

export type { Health } from './protocol'

export interface Transport {
  readonly kind: 'browser' | 'tauri'
  readonly link: Ref<LinkState>
  health(): Promise<Health>
  login(c: Credentials): Promise<LoginResult>
  /** Creates the first superuser (only while the database has no user) and logs in; a browser also sends the one-time setup code from the server log. */
  setup(username: string, password: string, setupCode?: string): Promise<LoginResult>
  logout(): Promise<void>
  /** `me` of the current session, with the server's clock at the time of the answer (ms). */
  me(): Promise<{ me: MeResult; serverNow: number }>
  /** Adopts a saved token after a page reload; resolves to `me` when the token still works. */
  resume?(token: string): Promise<unknown>
  /** Any dispatcher op (`write`, `users_list`, `audit_page`, `ping`, …); resolves to `result`. */
  request<T = unknown>(req: Request): Promise<T>
  /** Starts the live feed for this token (snapshot, then updates) and keeps it up. */
  startLive(token: string, h: LiveHandlers): void
  stopLive(): void
}

/** The login request object as the dispatcher knows it. */
export function loginRequest(c: Credentials): Request {
  if ('pin' in c) return { op: 'login_pin', username: c.username, pin: c.pin }
  if ('badge' in c) return { op: 'login_badge', badge: c.badge }
  return { op: 'login', username: c.username, password: c.password }
}

/** Reconnect delay after `attempt` failures: 0.5 s doubling to 15 s, with ±20 % jitter. */
export function backoffMs(attempt: number, rand: () => number = Math.random): number {
  const base = Math.min(15000, 500 * 2 ** Math.max(0, attempt))
  return Math.round(base * (0.8 + 0.4 * rand()))
}

/** Unwraps `{ok,result}` / `{ok:false,error}` envelopes; passes a bare result through. */
export function unwrapReply<T>(v: unknown): T {
  if (v && typeof v === 'object' && 'ok' in v && typeof (v as ReplyMsg).ok === 'boolean') {
    const r = v as ReplyMsg
    if (!r.ok) throw toApiError(r.error ?? { code: 'internal', message: 'request failed' })
    return r.result as T
  }
  return v as T
}

const REQUEST_TIMEOUT_MS = 10000
const OPEN_WAIT_MS = 3000

// ---------------------------------------------------------------------------------------------
// Browser: HTTP + WebSocket

/** HTTP endpoints that exist besides the WebSocket */
const HTTP_OPS: Record<string, [string, string]> = {
  me: ['GET', '/api/me'],
  snapshot: ['GET', '/api/snapshot'],
  write: ['POST', '/api/write'],
}

export class BrowserTransport implements Transport {
  readonly kind = 'browser' as const
  readonly link = ref<LinkState>('offline')
  private token: string | null = null
  private ws: WebSocket | null = null
  private handlers: LiveHandlers | null = null
  private nextId = 1
  private pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void; timer: ReturnType<typeof setTimeout> }>()
  private attempt = 0
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private base: string
  private wsUrl: string
  /** Offer the compact update encoding (docs/protocol.md); off by default. */
  private compact: boolean
  /** Tag names of the last snapshot, which compact updates index into. */
  private names: TagNames = new Map()

  constructor(base = '', wsUrl?: string, opts: { compact?: boolean } = {}) {
    this.base = base
    this.compact = opts.compact === true
    const loc = typeof location !== 'undefined' ? location : undefined
    this.wsUrl =
      wsUrl ?? (loc ? `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws` : 'ws://127.0.0.1:8765/ws')
  }

  private async http<T>(method: string, path: string, body?: unknown, onDate?: (ms: number) => void): Promise<T> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    if (this.token) headers['Authorization'] = `Bearer ${this.token}`
    let res: Response
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      })
    } catch (e) {
      throw new ApiError('not_connected', e instanceof Error ? e.message : String(e))
    }
    const date = Date.parse(res.headers.get('date') ?? '')
    if (onDate) onDate(Number.isNaN(date) ? Date.now() : date)
    if (res.status === 204) return undefined as T
    const text = await res.text()
    let data: unknown = undefined
    try {
      data = text ? JSON.parse(text) : undefined
    } catch {
      data = undefined
    }
    if (!res.ok) {
      if (data !== undefined) throw toApiError(data)
      const code = res.status === 401 ? 'unauthorized' : res.status === 403 ? 'forbidden' : res.status === 404 ? 'not_found' : 'internal'
      throw new ApiError(code, `${res.status} ${res.statusText || text}`.trim())
    }
    return unwrapReply<T>(data)
  }

  health(): Promise<Health> {
    return this.http<Health>('GET', '/health')
  }

  async login(c: Credentials): Promise<LoginResult> {
    const r = await this.http<LoginResult>('POST', '/api/login', c)
    this.token = r.token
    return r
  }

  async setup(username: string, password: string, setupCode?: string): Promise<LoginResult> {
    const r = await this.http<LoginResult>('POST', '/api/setup', { username, password, setup_code: setupCode ?? '' })
    this.token = r.token
    return r
  }

  async me(): Promise<{ me: MeResult; serverNow: number }> {
    let serverNow = Date.now()
    const me = await this.http<MeResult>('GET', '/api/me', undefined, (d) => (serverNow = d))
    return { me, serverNow }
  }

  async resume(token: string): Promise<unknown> {
    this.token = token
    try {
      return await this.http('GET', '/api/me')
    } catch (e) {
      this.token = null
      throw e
    }
  }

  async logout(): Promise<void> {
    const had = this.token
    this.stopLive()
    try {
      if (had) await this.http('POST', '/api/logout')
    } finally {
      this.token = null
    }
  }

  async request<T = unknown>(req: Request): Promise<T> {
    // While the live connection is (re)connecting, give it a moment instead of failing at once.
    if (this.handlers && this.link.value === 'connecting' && !HTTP_OPS[req.op]) await this.waitOnline(OPEN_WAIT_MS)
    return this.send<T>(req)
  }

  private waitOnline(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const stop = watch(this.link, (v) => {
        if (v !== 'connecting') done()
      })
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        stop()
        resolve()
      }
    })
  }

  private send<T>(req: Request): Promise<T> {
    const ws = this.ws
    if (ws && ws.readyState === WebSocket.OPEN) {
      const id = this.nextId++
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(id)
          reject(new ApiError('not_connected', 'timeout'))
        }, REQUEST_TIMEOUT_MS)
        this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
        ws.send(encodeRequest(id, req))
      })
    }
    const http = HTTP_OPS[req.op]
    if (http) {
      const { op: _op, ...body } = req
      return this.http<T>(http[0], http[1], http[0] === 'GET' ? undefined : body)
    }
    return Promise.reject(new ApiError('not_connected', 'no connection to the server'))
  }

  startLive(token: string, h: LiveHandlers): void {
    this.stopLive()
    this.token = token
    this.handlers = h
    this.attempt = 0
    this.open()
  }

  stopLive(): void {
    this.handlers = null
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    const ws = this.ws
    this.ws = null
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null
      try {
        ws.close(1000, 'logout')
      } catch {
        /* already closed */
      }
    }
    this.failPending('session closed')
    this.link.value = 'offline'
  }

  private failPending(msg: string) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer)
      p.reject(new ApiError('not_connected', msg))
    }
    this.pending.clear()
  }

  private open() {
    if (!this.token || !this.handlers) return
    this.link.value = 'connecting'
    let ws: WebSocket
    try {
      ws = new WebSocket(this.wsUrl, this.compact ? [COMPACT_PROTOCOL, 'bearer', this.token] : ['bearer', this.token])
    } catch {
      this.scheduleReconnect()
      return
    }
    this.ws = ws
    ws.onopen = () => {
      this.attempt = 0
      this.link.value = 'online'
    }
    // Errors are always followed by a close event, which decides what happens next.
    ws.onerror = () => undefined
    ws.onmessage = (ev) => this.onMessage(typeof ev.data === 'string' ? ev.data : '')
    ws.onclose = (ev) => {
      if (this.ws !== ws) return
      this.ws = null
      this.failPending('connection lost')
      this.link.value = 'offline'
      if (ev.code === 4001) {
        const h = this.handlers
        this.handlers = null
        h?.ended(4001, ev.reason || 'session ended')
        return
      }
      this.scheduleReconnect()
    }
  }

  private scheduleReconnect() {
    if (!this.handlers) return
    const delay = backoffMs(this.attempt++)
    this.link.value = 'connecting'
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      this.open()
    }, delay)
  }

  private onMessage(text: string) {
    const msg = decodeServerMsg(text)
    if (!msg) return
    if (msg.type === 'snapshot') {
      this.names = tagNames(msg as unknown as SnapshotMsg)
      this.handlers?.snapshot(msg as unknown as SnapshotMsg)
    } else if (msg.type === 'update') {
      // The server selected the compact encoding in the handshake: changes come by index.
      const compact = this.ws?.protocol === COMPACT_PROTOCOL && 'plcs' in msg
      this.handlers?.update(compact ? expandCompact(msg as never, this.names) : (msg as unknown as UpdateMsg))
    } else if (msg.type === 'reply') {
      const r = msg as ReplyMsg
      // A snapshot fetched on request resets what compact indices refer to.
      const res = r.result as { type?: string } | undefined
      if (r.ok && res?.type === 'snapshot') this.names = tagNames(res as unknown as SnapshotMsg)
      const p = this.pending.get(r.id)
      if (!p) return
      this.pending.delete(r.id)
      clearTimeout(p.timer)
      if (r.ok) p.resolve(r.result)
      else p.reject(toApiError(r.error ?? { code: 'internal', message: 'request failed' }))
    } else {
      // Server-initiated pushes (`alarm`, `message`, …): see pushes.ts.
      deliverPush(msg as unknown as PushMsg)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tauri: invoke('api', {request, token}) + events

type Unlisten = () => void

export class TauriTransport implements Transport {
  readonly kind = 'tauri' as const
  readonly link = ref<LinkState>('online')
  private token: string | null = null
  private unlisten: Unlisten[] = []
  private generation = 0

  private async call<T>(request: Request): Promise<T> {
    const { invoke } = await import('@tauri-apps/api/core')
    try {
      const v = await invoke('api', { request, token: this.token })
      this.link.value = 'online'
      return unwrapReply<T>(v)
    } catch (e) {
      throw toApiError(e)
    }
  }

  health(): Promise<Health> {
    return this.call<Health>({ op: 'health' })
  }

  async login(c: Credentials): Promise<LoginResult> {
    const r = await this.call<LoginResult>(loginRequest(c))
    this.token = r.token
    return r
  }

  async setup(username: string, password: string): Promise<LoginResult> {
    const r = await this.call<LoginResult>({ op: 'first_superuser', username, password })
    this.token = r.token
    return r
  }

  async logout(): Promise<void> {
    this.stopLive()
    try {
      if (this.token) await this.call({ op: 'logout' })
    } finally {
      this.token = null
    }
  }

  request<T = unknown>(req: Request): Promise<T> {
    return this.call<T>(req)
  }

  async me(): Promise<{ me: MeResult; serverNow: number }> {
    return { me: await this.call<MeResult>({ op: 'me' }), serverNow: Date.now() }
  }

  startLive(token: string, h: LiveHandlers): void {
    this.stopLive()
    this.token = token
    const gen = ++this.generation
    void (async () => {
      const { listen } = await import('@tauri-apps/api/event')
      const subs = await Promise.all([
        listen<SnapshotMsg>('live-snapshot', (e) => h.snapshot(e.payload)),
        listen<UpdateMsg>('live-update', (e) => h.update(e.payload)),
        listen<PushMsg>('push', (e) => deliverPush(e.payload)),
        listen<{ code?: number; reason?: string }>('session-ended', (e) =>
          h.ended(e.payload?.code ?? 4001, e.payload?.reason ?? 'session ended'),
        ),
      ])
      if (gen !== this.generation) {
        subs.forEach((u) => u())
        return
      }
      this.unlisten = subs
      try {
        h.snapshot(await this.call<SnapshotMsg>({ op: 'snapshot' }))
      } catch (e) {
        const err = toApiError(e)
        if (err.code === 'unauthorized') h.ended(4001, err.message)
        else this.link.value = 'offline'
      }
    })()
  }

  stopLive(): void {
    this.generation++
    this.unlisten.forEach((u) => u())
    this.unlisten = []
  }
}

/** True inside the Tauri window. */
export function inTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window
}

/** The transport of this page. */
export const transport: Transport = inTauri() ? new TauriTransport() : new BrowserTransport()
