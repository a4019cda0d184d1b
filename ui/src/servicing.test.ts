import { describe, expect, it } from 'vitest'
import type { CalibrationRun, Permission } from './protocol'
import {
  calStep,
  certificateUrl,
  decimalsFor,
  expectedAsLeftError,
  formatBytes,
  formatDuration,
  formatMs,
  reviewRows,
  serviceTabs,
  signed,
  spreadInUnit,
  withinTolerance,
} from './servicing'

const run = (over: Partial<CalibrationRun> = {}): CalibrationRun => ({
  id: 'eco_p1',
  points: [],
  old_gain: 0.001,
  old_offset: 1,
  unit: 'bar',
  range: [0, 10],
  tolerance: 0.05,
  state: 'open',
  ...over,
})

describe('service tabs', () => {
  const of = (perms: Permission[]) => serviceTabs((p) => perms.includes(p))
  it('follow the permissions', () => {
    expect(of(['service_mode', 'diagnostics'])).toEqual(['service', 'calibration', 'records', 'diagnostics'])
    expect(of(['diagnostics'])).toEqual(['diagnostics'])
    expect(of(['view_live', 'write_tags'])).toEqual([])
  })
})

describe('calibration steps', () => {
  it('go pick → ref1 → ref2 → review → done, or cancelled', () => {
    expect(calStep(null)).toBe('pick')
    expect(calStep(run())).toBe('ref1')
    const p = { reference: 2, raw: 1000, spread: 1 }
    expect(calStep(run({ points: [p] }))).toBe('ref2')
    expect(calStep(run({ points: [p, { reference: 8, raw: 7000, spread: 2 }] }))).toBe('review')
    expect(calStep(run({ state: 'applied', points: [p, p] }))).toBe('done')
    expect(calStep(run({ state: 'cancelled', points: [p] }))).toBe('cancelled')
  })
})

describe('calibration review', () => {
  const r = run({
    points: [
      { reference: 2, raw: 1000, spread: 4 },
      { reference: 8, raw: 7000, spread: 2 },
    ],
    gain: 0.001,
    offset: 1.0,
  })
  it('computes the as-found and expected as-left readings per point', () => {
    const rows = reviewRows(r)
    // as found: 1000 × 0.001 + 1 = 2 (error 0); 7000 × 0.001 + 1 = 8 (error 0)
    expect(rows[0].asFound).toBeCloseTo(2)
    expect(rows[0].asFoundError).toBeCloseTo(0)
    expect(rows[1].asLeft).toBeCloseTo(8)
    const wrong = reviewRows({ ...r, old_gain: 0.0011, old_offset: 0.9 })
    expect(wrong[1].asFoundError).toBeCloseTo(7000 * 0.0011 + 0.9 - 8)
  })
  it('gives the worst expected as-left error, null before gain/offset', () => {
    expect(expectedAsLeftError(run({ points: r.points }))).toBeNull()
    expect(expectedAsLeftError({ ...r, gain: 0.001, offset: 1.02 })).toBeCloseTo(0.02)
    expect(expectedAsLeftError({ ...r, gain: 0.00101, offset: 1.0 })).toBeCloseTo(0.07)
  })
  it('measures the spread in the unit and checks tolerances', () => {
    expect(spreadInUnit({ reference: 2, raw: 1, spread: 4 }, -0.002)).toBeCloseTo(0.008)
    expect(withinTolerance(0.05, 0.05)).toBe(true)
    expect(withinTolerance(-0.051, 0.05)).toBe(false)
    expect(withinTolerance(null, 0.05)).toBe(false)
  })
})

describe('formatting', () => {
  it('numbers', () => {
    expect(decimalsFor(0.05)).toBe(4)
    expect(decimalsFor(5)).toBe(2)
    expect(decimalsFor(0)).toBe(3)
    expect(signed(-0.3, 3)).toBe('−0.300')
    expect(signed(0.012, 3)).toBe('+0.012')
    expect(signed(-0.0001, 2)).toBe('0.00')
  })
  it('bytes, durations, milliseconds', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(8 * 1024 ** 3)).toBe('8.0 GiB')
    expect(formatBytes(undefined)).toBe('–')
    expect(formatDuration(12.7)).toBe('12 s')
    expect(formatDuration(3725)).toBe('1 h 2 min')
    expect(formatDuration(2 * 86400 + 7200)).toBe('2 d 2 h')
    expect(formatDuration(62)).toBe('1 min 2 s')
    expect(formatMs(0.424)).toBe('0.42 ms')
    expect(formatMs(12.34)).toBe('12.3 ms')
    expect(formatMs(1520.4)).toBe('1520 ms')
    expect(formatMs(null)).toBe('–')
  })
  it('certificate links', () => {
    expect(certificateUrl(7)).toBe('/api/calibration/records/7.html')
  })
})
