import { describe, expect, it } from 'vitest'
import { configError, createRequest, scopesFor, tokenState, withPlcs, withTag } from './tokens'
import type { ApiTokenView, Permission, Role } from './protocol'
import { api_tokens } from './wire-samples'

const table: Record<string, Permission[]> = {
  admin: ['view_live', 'read_audit', 'manage_tokens'],
  superuser: ['view_live', 'write_tags', 'ack_alarms', 'read_audit', 'edit_config', 'manage_tokens'],
}
const may = (r: Role | undefined, p: Permission) => !!r && (table[r] ?? []).includes(p)

describe('API tokens', () => {
  it('offers only the scopes the role may hand out', () => {
    expect(scopesFor('admin', may)).toEqual(['live:read', 'history:read', 'alarms:read', 'audit:read'])
    expect(scopesFor('superuser', may)).toContain('config:read')
    expect(scopesFor(undefined, may)).toEqual([])
  })

  it('tells active, expired and revoked apart', () => {
    const t: ApiTokenView = api_tokens.tokens[0]
    const before = Date.parse(t.expires_at) - 1000
    expect(tokenState(t, before)).toBe('active')
    expect(tokenState(t, Date.parse(t.expires_at) + 1)).toBe('expired')
    expect(tokenState({ ...t, revoked: true }, before)).toBe('revoked')
  })

  it('sends parks only when chosen', () => {
    const r = createRequest({ name: ' gw ', scopes: ['live:read'], parks: [], days: 90, password: 'p' })
    expect(r).toEqual({ op: 'api_token_create', name: 'gw', scopes: ['live:read'], expires_days: 90, password: 'p' })
    expect(createRequest({ name: 'gw', scopes: ['write'], parks: ['a'], days: 1, password: 'p' }).parks).toEqual(['a'])
  })
})

describe('configuration form', () => {
  it('edits a tag range and unit without touching the rest', () => {
    const cfg = { plc_config: [{ id: 'a', url: 'opc.tcp://x:4840', name: 'A' }], tags: { 'a/P': { key: true } } }
    const c = withTag(cfg, 'a/P', 'bar', '0', '50')
    expect(c.tags!['a/P']).toEqual({ key: true, unit: 'bar', range: [0, 50] })
    expect(cfg.tags['a/P']).toEqual({ key: true })
    const cleared = withTag(c, 'a/P', '', '', '')
    expect(cleared.tags!['a/P']).toEqual({ key: true })
    expect(withPlcs(cfg, []).plc_config).toEqual([])
  })

  it('maps conflict and invalid to their messages', () => {
    expect(configError('conflict', 'x').key).toBe('config.conflict')
    expect(configError('invalid', 'config.json: $.plc_config[1].url: bad')).toEqual({
      key: 'config.invalid',
      params: { message: 'config.json: $.plc_config[1].url: bad' },
    })
  })
})
