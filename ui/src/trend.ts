// Trend logic without a chart framework: time windows, pan/zoom, the history reply turned into
// drawable line segments (broken at gaps) and min/max envelopes, and the live edge appended
// from WebSocket updates without re-querying, pinch zoom around the fingers, the configured
// limit and alarm limit lines of a pen. Pure functions, so Vitest checks them.

import type { AlarmPriority, BucketPoint, RawPoint, SeriesView } from './protocol'

export const RANGES = [
  { key: '10m', ms: 10 * 60_000 },
  { key: '1h', ms: 3_600_000 },
  { key: '8h', ms: 8 * 3_600_000 },
  { key: '24h', ms: 24 * 3_600_000 },
  { key: '7d', ms: 7 * 24 * 3_600_000 },
] as const

/** Shortest and longest window zoom allows. */
export const MIN_SPAN = 60_000
export const MAX_SPAN = 7 * 24 * 3_600_000

/** The visible time window; `live` windows follow the clock. */
export interface View {
  from: number
  to: number
  live: boolean
}

export function windowOf(spanMs: number, now: number): View {
  return { from: now - spanMs, to: now, live: true }
}

/** Pans by a drag of `dxPx` on a plot `widthPx` wide (right drag = back in time). A pan that
 * reaches `now` becomes live again. */
export function pan(v: View, dxPx: number, widthPx: number, now: number): View {
  const span = v.to - v.from
  const dt = (-dxPx / Math.max(1, widthPx)) * span
  let to = Math.min(now, v.to + dt)
  const from = to - span
  to = from + span
  return { from, to, live: to >= now - span * 0.01 }
}

/** Zooms around the window's centre (live windows keep their right edge at now). */
export function zoom(v: View, factor: number, now: number): View {
  const span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, (v.to - v.from) * factor))
  if (v.live) return { from: now - span, to: now, live: true }
  const mid = (v.from + v.to) / 2
  const to = Math.min(now, mid + span / 2)
  return { from: to - span, to, live: to >= now }
}

/** Zooms by `factor` (< 1 = in) around the time under `at` (0 = the plot's left edge, 1 = its
 * right edge), as a pinch does around the fingers' centre. The window never passes `now`; a
 * window that reaches it (zooming out of the past, or a live window zoomed at its right edge)
 * is live and follows the clock again. */
export function pinch(v: View, factor: number, at: number, now: number): View {
  if (!Number.isFinite(factor) || factor <= 0) return v
  const f = Math.min(1, Math.max(0, Number.isFinite(at) ? at : 1))
  const span = v.to - v.from
  const next = Math.min(MAX_SPAN, Math.max(MIN_SPAN, span * factor))
  const anchor = v.from + f * span
  const to = Math.min(now, anchor + (1 - f) * next)
  return { from: to - next, to, live: to >= now - next * 0.01 }
}

/** The distance between two touch points, in pixels. */
export function spread(a: { x: number; y: number }, b: { x: number; y: number }): number {
  return Math.hypot(a.x - b.x, a.y - b.y)
}

/** A horizontal line a pen draws at a configured value. */
export interface LimitLine {
  value: number
  /** `range`: an engineering range bound; `alarm`: a configured limit alarm. */
  kind: 'range' | 'alarm'
  /** Next to the line: `HH 150`; '' for range bounds. */
  label: string
  alarm?: string
  condition?: string
  priority?: AlarmPriority
}

const SHORT: Record<string, string> = { high_high: 'HH', high: 'H', low: 'L', low_low: 'LL' }

/** The lines of one pen: its engineering range (from the reply, else the live tag) and its
 * configured limit alarms, as the server sends them (highest first). */
export function limitLines(s: Pick<SeriesView, 'range' | 'alarm_limits'> | undefined, range?: [number, number] | null): LimitLine[] {
  const r = s?.range ?? range ?? null
  const out: LimitLine[] = (r ?? []).filter(Number.isFinite).map((value) => ({ value, kind: 'range' as const, label: '' }))
  for (const a of s?.alarm_limits ?? []) {
    if (!Number.isFinite(a.limit)) continue
    out.push({
      value: a.limit,
      kind: 'alarm',
      label: `${SHORT[a.condition] ?? a.condition} ${a.limit}`,
      alarm: a.alarm,
      condition: a.condition,
      priority: a.priority,
    })
  }
  return out
}

/** A drawable point: time, value (null = gap). */
export type Pt = [number, number | null]

export interface Drawn {
  /** Connected runs of points. */
  segments: [number, number][][]
  /** Min/max whiskers of buckets. */
  envelopes: [number, number, number][]
}

function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (typeof v === 'boolean') return v ? 1 : 0
  return null
}

/** The points of one series as line values: raw values (bad quality = gap) or each bucket's
 * first and last (its min/max go to the envelopes). */
export function toPoints(s: SeriesView): { pts: Pt[]; env: [number, number, number][] } {
  const pts: Pt[] = []
  const env: [number, number, number][] = []
  if (s.kind === 'buckets') {
    for (const p of s.points as BucketPoint[]) {
      const [t, lo, hi, first, last] = p
      if (lo == null || hi == null || first == null || last == null) {
        pts.push([t, null])
        continue
      }
      pts.push([t, first], [t, last])
      env.push([t, lo, hi])
    }
  } else {
    for (const p of s.points as RawPoint[]) {
      const [t, v, q] = p
      pts.push([t, q === 'bad' ? null : num(v)])
    }
  }
  return { pts, env }
}

/** Splits at gaps and keeps what falls in (or touches) the window. */
export function segments(pts: Pt[], v: View): [number, number][][] {
  const out: [number, number][][] = []
  let cur: [number, number][] = []
  for (const [t, y] of pts) {
    if (y == null) {
      if (cur.length) out.push(cur)
      cur = []
      continue
    }
    cur.push([t, y])
  }
  if (cur.length) out.push(cur)
  return out
    .map((s) => s.filter((p, i) => (p[0] >= v.from && p[0] <= v.to) || (s[i + 1]?.[0] ?? -Infinity) >= v.from))
    .filter((s) => s.length > 0)
}

/** Value range of what is drawn, padded; `limits` (engineering range) and `lines` (limit lines)
 * widen it, so every configured line is on the plot. */
export function yRange(pts: Pt[], env: [number, number, number][], limits?: [number, number] | null, lines: number[] = []): [number, number] {
  let lo = Infinity
  let hi = -Infinity
  for (const [, y] of pts) if (y != null) { lo = Math.min(lo, y); hi = Math.max(hi, y) }
  for (const [, a, b] of env) { lo = Math.min(lo, a); hi = Math.max(hi, b) }
  if (limits) { lo = Math.min(lo, limits[0]); hi = Math.max(hi, limits[1]) }
  for (const y of lines) if (Number.isFinite(y)) { lo = Math.min(lo, y); hi = Math.max(hi, y) }
  if (!Number.isFinite(lo)) return [0, 1]
  if (hi - lo < 1e-9) return [lo - 1, hi + 1]
  const pad = (hi - lo) * 0.05
  return [lo - pad, hi + pad]
}

/** Appends a live value (from the WebSocket) to the points, keeping at most `max`. */
export function appendLive(pts: Pt[], t: number, v: unknown, quality: string, max = 5000): Pt[] {
  const last = pts[pts.length - 1]
  if (last && t < last[0]) return pts
  const y = quality === 'bad' ? null : num(v)
  if (last && last[0] === t && last[1] === y) return pts
  const next = [...pts, [t, y] as Pt]
  return next.length > max ? next.slice(next.length - max) : next
}

/** Canvas x of time `t`. */
export function xOf(t: number, v: View, left: number, width: number): number {
  return left + ((t - v.from) / Math.max(1, v.to - v.from)) * width
}

/** Canvas y of value `y`. */
export function yOf(y: number, r: [number, number], top: number, height: number): number {
  return top + height - ((y - r[0]) / (r[1] - r[0])) * height
}
