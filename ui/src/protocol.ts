// Wire shapes of the remote protocol (issue 4) and the Tauri bridge. These mirror the Rust
// `live::Snapshot` / `live::Delta` serialisation exactly; optional fields are the ones the server
// may add (unit, range, key, description from config `tags`).

export type PlcStatus = 'DISCONNECTED' | 'CONNECTING' | 'CONNECTED' | 'ERROR'
export type Quality = 'good' | 'uncertain' | 'bad'
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export interface NodeSnapshot {
  name: string
  node_id: string
  type: string
  array_size?: number | null
  value: Json
  quality: Quality
  reason?: string | null
  ts: string | null
  writable: boolean
  // Optional metadata from config `tags.<plc>/<name>`.
  unit?: string | null
  range?: [number, number] | null
  key?: boolean
  description?: string | null
}

export interface PlcSnapshot {
  id: string
  name: string
  url: string
  status: PlcStatus
  error?: string | null
  server_name?: string | null
  nodes: NodeSnapshot[]
}

export interface SnapshotMsg {
  type?: 'snapshot'
  seq: number
  plcs: PlcSnapshot[]
}

export interface Change {
  name: string
  value: Json
  quality: Quality
  reason?: string | null
  ts: string | null
}

export interface PlcDelta {
  id: string
  status: PlcStatus
  error?: string | null
  rediscovered?: boolean
  changes: Change[]
}

export interface UpdateMsg {
  type?: 'update'
  seq: number
  plcs: PlcDelta[]
}

export interface ApiErrorBody {
  code: string
  message: string
  retry_after_s?: number
}

export interface ReplyMsg {
  type: 'reply'
  id: number
  ok: boolean
  result?: unknown
  error?: ApiErrorBody
}

export type Role = 'viewer' | 'operator' | 'serviceman' | 'admin' | 'superuser'

export interface UserSummary {
  username: string
  role: Role
  parks: string[]
}

/** Reply of `login` / `login_pin` / `login_badge` / `setup`. */
export interface LoginResult {
  token: string
  expires_at?: string
  idle_timeout_s?: number
  idle_expires_at?: string
  user: UserSummary
}

/** A request: the same JSON object over WS (plus `id`), HTTP and Tauri `invoke('api', {request})`. */
export interface Request {
  op: string
  [k: string]: unknown
}

/** An error with the dispatcher's stable code (`forbidden`, `invalid`, …). */
export class ApiError extends Error {
  code: string
  retryAfterS?: number
  constructor(code: string, message: string, retryAfterS?: number) {
    // Some messages repeat the code ("forbidden: role admin …"); the UI shows the code anyway.
    const m = message && message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message
    super(m || code)
    this.code = code
    this.retryAfterS = retryAfterS
  }
}

/** Turns whatever a transport rejected with into an ApiError. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e
  if (typeof e === 'string') {
    try {
      return toApiError(JSON.parse(e))
    } catch {
      return new ApiError('internal', e)
    }
  }
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>
    if (o.error && typeof o.error === 'object') return toApiError(o.error)
    if (typeof o.error === 'string')
      return new ApiError(o.error, String(o.message ?? o.error), num(o.retry_after_s))
    if (typeof o.code === 'string') return new ApiError(o.code, String(o.message ?? o.code), num(o.retry_after_s))
    if (e instanceof Error) return new ApiError('not_connected', e.message)
  }
  return new ApiError('internal', String(e))
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined
}

/** Encodes a WS request frame: `{"id":N,"op":…,…}` (id first, then the request fields). */
export function encodeRequest(id: number, req: Request): string {
  return JSON.stringify({ id, ...req })
}

export type ServerMsg =
  | ({ type: 'snapshot' } & SnapshotMsg)
  | ({ type: 'update' } & UpdateMsg)
  | ReplyMsg
  | { type: string; [k: string]: unknown }

/** Parses a WS text frame; null for anything that is not a JSON object with a `type`. */
export function decodeServerMsg(text: string): ServerMsg | null {
  try {
    const v = JSON.parse(text)
    if (v && typeof v === 'object' && typeof v.type === 'string') return v as ServerMsg
  } catch {
    /* ignore malformed frames */
  }
  return null
}
