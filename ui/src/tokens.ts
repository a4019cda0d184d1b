// Pure helpers of the API token and configuration screens (the server decides everything; these
// only shape what the screens show and send).

import type { ApiTokenView, Permission, Role, TokenScope } from './protocol'
import { TOKEN_SCOPES } from './protocol'

/** The permission a creator's role needs for each scope (mirrors `Scope::permission` on the server; only used to hide scopes the server would refuse). */
const SCOPE_NEEDS: Record<TokenScope, Permission> = {
  'live:read': 'view_live',
  'history:read': 'view_live',
  'alarms:read': 'view_live',
  'alarms:ack': 'ack_alarms',
  write: 'write_tags',
  'audit:read': 'read_audit',
  'config:read': 'edit_config',
}

/** The scopes `role` may hand out, given `may(role, permission)` from the role table. */
export function scopesFor(role: Role | undefined, may: (r: Role | undefined, p: Permission) => boolean): TokenScope[] {
  return TOKEN_SCOPES.filter((s) => may(role, SCOPE_NEEDS[s]))
}

export type TokenState = 'active' | 'expired' | 'revoked'

/** What a listed token is as of `now` (ms). */
export function tokenState(t: ApiTokenView, now: number): TokenState {
  if (t.revoked) return 'revoked'
  return Date.parse(t.expires_at) <= now ? 'expired' : 'active'
}

/** The `api_token_create` request of the form's fields (empty parks: every park of the caller). */
export function createRequest(f: { name: string; scopes: TokenScope[]; parks: string[]; days: number; password: string }) {
  return {
    op: 'api_token_create',
    name: f.name.trim(),
    scopes: [...f.scopes],
    ...(f.parks.length ? { parks: [...f.parks] } : {}),
    expires_days: f.days,
    password: f.password,
  }
}

// --- configuration form ---

export interface PlcEntry {
  id: string
  url: string
  name: string
  [k: string]: unknown
}

type Cfg = Record<string, unknown> & { plc_config?: PlcEntry[]; tags?: Record<string, Record<string, unknown>> }

/** A copy of `cfg` with the PLC list replaced. */
export function withPlcs(cfg: Cfg, plcs: PlcEntry[]): Cfg {
  return { ...cfg, plc_config: plcs.map((p) => ({ ...p })) }
}

/** A copy of `cfg` where tag `key` (`plc/tag`) has `unit` and `range` (empty fields removed). */
export function withTag(cfg: Cfg, key: string, unit: string, min: string, max: string): Cfg {
  const tags = { ...(cfg.tags ?? {}) }
  const entry: Record<string, unknown> = { ...(tags[key] ?? {}) }
  if (unit.trim()) entry.unit = unit.trim()
  else delete entry.unit
  const lo = Number(min)
  const hi = Number(max)
  if (min.trim() !== '' && max.trim() !== '' && Number.isFinite(lo) && Number.isFinite(hi)) entry.range = [lo, hi]
  else delete entry.range
  tags[key] = entry
  return { ...cfg, tags }
}

/** The fields of one alarm definition the configuration form edits (the rest stays as it is). */
export interface AlarmForm {
  id: string
  tag: string
  condition: string
  /** `limit` for high/low conditions, `value` for equals/not_equals (true/false/number/text). */
  threshold: string
  priority: string
  message: string
}

const LIMIT_CONDITIONS = ['high', 'high_high', 'low', 'low_low']

/** The form fields of a configured alarm. */
export function alarmForm(a: Record<string, unknown>): AlarmForm {
  const msg = a.message
  const text = typeof msg === 'string' ? msg : msg && typeof msg === 'object' ? String((msg as Record<string, unknown>).en ?? '') : ''
  const th = LIMIT_CONDITIONS.includes(String(a.condition)) ? a.limit : a.value
  return {
    id: String(a.id ?? ''),
    tag: String(a.tag ?? ''),
    condition: String(a.condition ?? 'high'),
    threshold: th === undefined ? '' : String(th),
    priority: String(a.priority ?? 'medium'),
    message: text,
  }
}

/** A `value` typed as JSON would read it: true/false, a number, else the text. */
function typedValue(v: string): unknown {
  const s = v.trim()
  if (s === 'true') return true
  if (s === 'false') return false
  const n = Number(s)
  return s !== '' && Number.isFinite(n) ? n : s
}

/**
 * A copy of `cfg` where the alarm `f.id` has the form's fields (added when new). Keys the form
 * does not show (deadband, delays, other languages of the message) are kept; the server
 * validates the result.
 */
export function withAlarm(cfg: Cfg, f: AlarmForm): Cfg {
  const list = Array.isArray(cfg.alarms) ? (cfg.alarms as Record<string, unknown>[]) : []
  const id = f.id.trim()
  const old = list.find((a) => a.id === id) ?? {}
  const next: Record<string, unknown> = { ...old, id, tag: f.tag.trim(), condition: f.condition, priority: f.priority }
  if (LIMIT_CONDITIONS.includes(f.condition)) {
    next.limit = Number(f.threshold)
    delete next.value
  } else {
    next.value = typedValue(f.threshold)
    delete next.limit
    delete next.deadband
  }
  const m = old.message
  next.message = m && typeof m === 'object' ? { ...(m as Record<string, unknown>), en: f.message } : f.message
  const alarms = list.some((a) => a.id === id) ? list.map((a) => (a.id === id ? next : { ...a })) : [...list.map((a) => ({ ...a })), next]
  return { ...cfg, alarms }
}

/** A copy of `cfg` without the alarm `id`. */
export function withoutAlarm(cfg: Cfg, id: string): Cfg {
  const list = Array.isArray(cfg.alarms) ? (cfg.alarms as Record<string, unknown>[]) : []
  return { ...cfg, alarms: list.filter((a) => a.id !== id) }
}

/** The message key and parameters for a failed `config_set`. */
export function configError(code: string, message: string): { key: 'config.conflict' | 'config.invalid'; params: Record<string, string> } {
  if (code === 'conflict') return { key: 'config.conflict', params: {} }
  return { key: 'config.invalid', params: { message } }
}
