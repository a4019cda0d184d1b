import { describe, expect, it } from 'vitest'
import { idleFromMe, parseHash, routeHash, type Route } from './session'

describe('session helpers', () => {
  it('derives the idle timeout from idle_expires_at and the server clock', () => {
    const now = Date.parse('2026-11-23T10:00:00Z')
    const me = (idle: string) => ({
      user: { username: 'v', role: 'viewer' as const, parks: [], source: 'panel', expires_at: '2026-11-24T10:00:00Z', idle_expires_at: idle },
    })
    expect(idleFromMe(me('2026-11-23T10:30:00Z'), now)).toBe(1800)
    expect(idleFromMe(me('2026-11-23T10:00:03.2Z'), now)).toBe(3)
    expect(idleFromMe(me(''), now)).toBeNull()
    expect(idleFromMe(me('2026-11-23T09:00:00Z'), now)).toBeNull()
  })

  it('round-trips routes through the URL hash, including tag names with folders', () => {
    const routes: Route[] = [
      { name: 'overview' },
      { name: 'park', plc: 'eco_solar' },
      { name: 'tag', plc: 'eco_solar', tag: 'Meteo/Irradiance_W_m2' },
      { name: 'tag', plc: 'isiada', tag: 'CMD_Instant_Cutoff' },
      { name: 'admin', tab: 'audit' },
      { name: 'service' },
      { name: 'calibration' },
      { name: 'calibration', records: true },
      { name: 'diagnostics' },
    ]
    for (const r of routes) expect(parseHash(routeHash(r))).toEqual(r)
    expect(parseHash('#/nonsense')).toEqual({ name: 'overview' })
    expect(parseHash('')).toEqual({ name: 'overview' })
  })
})
