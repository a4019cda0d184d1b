import { describe, expect, it } from 'vitest'
import { idleFromMe, parseHash, routeHash, type Route } from './session'

describe('session helpers', () => {
  it('takes the idle timeout from the server, or derives it from idle_expires_at and the server clock', () => {
    expect(idleFromMe({ idle_timeout_s: 1800 }, 0)).toBe(1800)
    const now = Date.parse('2026-11-23T10:00:00Z')
    expect(idleFromMe({ user: { username: 'v', role: 'viewer', parks: [], idle_expires_at: '2026-11-23T10:30:00Z' } }, now)).toBe(1800)
    expect(idleFromMe({ user: { username: 'v', role: 'viewer', parks: [], idle_expires_at: '2026-11-23T10:00:03.2Z' } }, now)).toBe(3)
    expect(idleFromMe({ user: { username: 'v', role: 'viewer', parks: [] } }, now)).toBeNull()
    expect(idleFromMe({ user: { username: 'v', role: 'viewer', parks: [], idle_expires_at: '2026-11-23T09:00:00Z' } }, now)).toBeNull()
  })

  it('round-trips routes through the URL hash, including tag names with folders', () => {
    const routes: Route[] = [
      { name: 'overview' },
      { name: 'park', plc: 'eco_solar' },
      { name: 'tag', plc: 'eco_solar', tag: 'Meteo/Irradiance_W_m2' },
      { name: 'tag', plc: 'isiada', tag: 'CMD_Instant_Cutoff' },
      { name: 'admin', tab: 'audit' },
    ]
    for (const r of routes) expect(parseHash(routeHash(r))).toEqual(r)
    expect(parseHash('#/nonsense')).toEqual({ name: 'overview' })
    expect(parseHash('')).toEqual({ name: 'overview' })
  })
})
