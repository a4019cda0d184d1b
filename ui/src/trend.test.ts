import { describe, expect, it } from 'vitest'
import { appendLive, pan, segments, toPoints, windowOf, yRange, zoom } from './trend'
import type { SeriesView } from './protocol'
import history from './locales/history'
import { parseHash, routeHash } from './session'

describe('trend', () => {
  const now = 1_790_000_000_000
  it('breaks lines at bad quality and bucket gaps', () => {
    const raw: SeriesView = { tag: 'a/P', kind: 'raw', points: [[now - 3000, 1, 'good'], [now - 2000, 2, 'bad'], [now - 1000, 3, 'good']] }
    const v = windowOf(10_000, now)
    expect(segments(toPoints(raw).pts, v)).toEqual([[[now - 3000, 1]], [[now - 1000, 3]]])
    const b: SeriesView = { tag: 'a/P', kind: 'buckets', points: [[now - 3000, 0, 9, 1, 2], [now - 2000, null, null, null, null], [now - 1000, 3, 4, 3, 4]] }
    const p = toPoints(b)
    expect(p.env).toEqual([[now - 3000, 0, 9], [now - 1000, 3, 4]])
    expect(segments(p.pts, v).length).toBe(2)
    // The spike's max widens the value range.
    expect(yRange(p.pts, p.env)[1]).toBeGreaterThan(9)
  })
  it('pans back in time by dragging right and becomes live again at now', () => {
    const v = windowOf(3_600_000, now)
    const back = pan(v, 100, 1000, now)
    expect(back.to).toBe(now - 360_000)
    expect(back.live).toBe(false)
    expect(pan(back, -200, 1000, now)).toEqual({ from: now - 3_600_000, to: now, live: true })
  })
  it('zooms within bounds, keeping a live edge at now', () => {
    const v = windowOf(3_600_000, now)
    expect(zoom(v, 0.5, now)).toEqual({ from: now - 1_800_000, to: now, live: true })
    expect(zoom(v, 1e-6, now).to - zoom(v, 1e-6, now).from).toBe(60_000)
  })
  it('appends live values in order without duplicates', () => {
    let pts = appendLive([], now, 5, 'good')
    pts = appendLive(pts, now, 5, 'good')
    pts = appendLive(pts, now - 10, 6, 'good')
    pts = appendLive(pts, now + 1, true, 'bad')
    expect(pts).toEqual([[now, 5], [now + 1, null]])
  })
  it('routes to the trend screen of a park', () => {
    expect(parseHash('#/trend/eco_solar')).toEqual({ name: 'trend', plc: 'eco_solar' })
    expect(routeHash({ name: 'trend', plc: 'eco solar' })).toBe('#/trend/eco%20solar')
  })
  it('has every trend string in en, de and pl', () => {
    const keys = Object.keys(history.en).sort()
    expect(Object.keys(history.de).sort()).toEqual(keys)
    expect(Object.keys(history.pl).sort()).toEqual(keys)
  })
})
