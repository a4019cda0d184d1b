import { describe, expect, it } from 'vitest'
import { alarmForm, configError, createRequest, scopesFor, tokenState, withAlarm, withoutAlarm, withPlcs, withTag } from './tokens'
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

  it('edits, adds and removes an alarm, keeping what the form does not show', () => {
    const cfg = {
      alarms: [{ id: 'p_high', tag: 'a/P', condition: 'high', limit: 100, deadband: 5, on_delay_seconds: 2, priority: 'high', message: { en: 'P high', de: 'P hoch' } }],
    }
    const f = alarmForm(cfg.alarms[0])
    expect(f).toEqual({ id: 'p_high', tag: 'a/P', condition: 'high', threshold: '100', priority: 'high', message: 'P high' })
    const c = withAlarm(cfg, { ...f, threshold: '120', message: 'P too high' })
    expect(c.alarms).toEqual([{ id: 'p_high', tag: 'a/P', condition: 'high', limit: 120, deadband: 5, on_delay_seconds: 2, priority: 'high', message: { en: 'P too high', de: 'P hoch' } }])
    expect(cfg.alarms[0].limit).toBe(100)
    const added = withAlarm(c, { id: 'brk', tag: 'a/Breaker_Closed', condition: 'equals', threshold: 'false', priority: 'urgent', message: 'Breaker open' })
    expect((added.alarms as unknown[])[1]).toEqual({ id: 'brk', tag: 'a/Breaker_Closed', condition: 'equals', value: false, priority: 'urgent', message: 'Breaker open' })
    expect(alarmForm((added.alarms as Record<string, unknown>[])[1]).threshold).toBe('false')
    expect((withoutAlarm(added, 'p_high').alarms as { id: string }[]).map((a) => a.id)).toEqual(['brk'])
  })

  it('maps conflict and invalid to their messages', () => {
    expect(configError('conflict', 'x').key).toBe('config.conflict')
    expect(configError('invalid', 'config.json: $.plc_config[1].url: bad')).toEqual({
      key: 'config.invalid',
      params: { message: 'config.json: $.plc_config[1].url: bad' },
    })
  })
})
