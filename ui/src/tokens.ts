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

/** The message key and parameters for a failed `config_set`. */
export function configError(code: string, message: string): { key: 'config.conflict' | 'config.invalid'; params: Record<string, string> } {
  if (code === 'conflict') return { key: 'config.conflict', params: {} }
  return { key: 'config.invalid', params: { message } }
}
