import { describe, expect, it } from 'vitest'
import { MAX_SPAN, MIN_SPAN, appendLive, limitLines, pan, pinch, segments, spread, toPoints, windowOf, yRange, zoom } from './trend'
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
  it('pinch zooms around the fingers: the time under them stays put', () => {
    const past = { from: now - 7_200_000, to: now - 3_600_000, live: false }
    // Fingers at a quarter of the plot, spread to twice the distance: half the span.
    const z = pinch(past, 0.5, 0.25, now)
    expect(z.to - z.from).toBe(1_800_000)
    const under = past.from + 0.25 * 3_600_000
    expect(z.from + 0.25 * (z.to - z.from)).toBe(under)
    expect(z.live).toBe(false)
    // Pinching in (fingers closer) widens, around the same time.
    const o = pinch(past, 1.5, 0.25, now)
    expect(o.to - o.from).toBe(5_400_000)
    expect(o.from + 0.25 * (o.to - o.from)).toBe(under)
    // Bounded spans.
    expect(pinch(past, 1e-9, 0.5, now).to - pinch(past, 1e-9, 0.5, now).from).toBe(MIN_SPAN)
    const wide = pinch(past, 1e9, 0.5, now)
    expect(wide.to - wide.from).toBe(MAX_SPAN)
    // Nonsense factors change nothing; an anchor outside the plot is clamped to its edge.
    expect(pinch(past, 0, 0.5, now)).toEqual(past)
    expect(pinch(past, Number.NaN, 0.5, now)).toEqual(past)
    expect(pinch(past, 0.5, 7, now)).toEqual(pinch(past, 0.5, 1, now))
  })
  it('pinch keeps the live edge: at the right edge it follows, zooming out to now follows again', () => {
    const live = windowOf(3_600_000, now)
    expect(pinch(live, 0.5, 1, now)).toEqual({ from: now - 1_800_000, to: now, live: true })
    // Zooming in at the centre leaves the live edge …
    const mid = pinch(live, 0.5, 0.5, now)
    expect(mid).toEqual({ from: now - 2_700_000, to: now - 900_000, live: false })
    // … zooming out again reaches now, is clamped there and live.
    const back = pinch(mid, 4, 0.5, now)
    expect(back).toEqual({ from: now - 7_200_000, to: now, live: true })
    expect(spread({ x: 0, y: 0 }, { x: 3, y: 4 })).toBe(5)
  })
  it('turns the range and the limit alarms of a reply into lines that widen the value range', () => {
    const s: Pick<SeriesView, 'range' | 'alarm_limits'> = {
      range: [0, 200],
      alarm_limits: [
        { alarm: 'a_hh', condition: 'high_high', limit: 250, priority: 'urgent' },
        { alarm: 'a_l', condition: 'low', limit: 5, priority: 'low' },
      ],
    }
    const lines = limitLines(s, [0, 100])
    expect(lines.map((l) => [l.kind, l.value, l.label, l.priority])).toEqual([
      ['range', 0, '', undefined],
      ['range', 200, '', undefined],
      ['alarm', 250, 'HH 250', 'urgent'],
      ['alarm', 5, 'L 5', 'low'],
    ])
    // Without a reply range, the live tag's range; without either, only alarms.
    expect(limitLines({}, [1, 2]).map((l) => l.value)).toEqual([1, 2])
    expect(limitLines(undefined, null)).toEqual([])
    const r = yRange([[now, 50], [now + 1, 60]], [], null, lines.map((l) => l.value))
    expect(r[0]).toBeLessThan(0)
    expect(r[1]).toBeGreaterThan(250)
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
