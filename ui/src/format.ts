// Value formatting: numbers with sensible precision, booleans, bit arrays, units guessed from
// S7 naming conventions when the config gives none.

import type { Json } from './protocol'

export const INT_TYPES: Record<string, [number, number] | [bigint, bigint]> = {
  SByte: [-128, 127],
  Byte: [0, 255],
  Int16: [-32768, 32767],
  UInt16: [0, 65535],
  Int32: [-2147483648, 2147483647],
  UInt32: [0, 4294967295],
  Int64: [-(2n ** 63n), 2n ** 63n - 1n],
  UInt64: [0n, 2n ** 64n - 1n],
}
export const FLOAT_TYPES = new Set(['Float', 'Double'])

export function isIntegerType(t: string): boolean {
  return t in INT_TYPES
}
export function isNumericType(t: string): boolean {
  return isIntegerType(t) || FLOAT_TYPES.has(t)
}

const UNIT_SUFFIXES: [RegExp, string][] = [
  [/_W_m2$/i, 'W/m²'],
  [/_kWh$/, 'kWh'],
  [/_MWh$/, 'MWh'],
  [/_kW$/, 'kW'],
  [/_MW$/, 'MW'],
  [/_W$/, 'W'],
  [/_kvar$/i, 'kvar'],
  [/_kVA$/, 'kVA'],
  [/_Hz$/, 'Hz'],
  [/_kV$/, 'kV'],
  [/_V$/, 'V'],
  [/_A$/, 'A'],
  [/_(degC|C)$/, '°C'],
  [/_(pct|percent)$/i, '%'],
  [/_kW_s$/, 'kW/s'],
  [/_m_s$/, 'm/s'],
  [/_Wh$/, 'Wh'],
  [/_ms$/, 'ms'],
  [/_s$/, 's'],
  [/_rpm$/i, 'rpm'],
  [/_bar$/, 'bar'],
]

/** Unit from a name such as `Active_Power_kW` → `kW`; null when the name says nothing. */
export function guessUnit(name: string): string | null {
  for (const [re, u] of UNIT_SUFFIXES) if (re.test(name)) return u
  return null
}

/** A readable label from a tag's leaf name: unit suffix dropped, underscores as spaces. */
export function tagLabel(leaf: string): string {
  let s = leaf
  for (const [re] of UNIT_SUFFIXES) {
    if (re.test(s)) {
      s = s.replace(re, '')
      break
    }
  }
  return s.replace(/_/g, ' ').trim() || leaf
}

/** A float with precision that suits its magnitude. */
export function formatNumber(v: number, type = 'Double'): string {
  if (!Number.isFinite(v)) return String(v)
  if (isIntegerType(type)) return String(Math.trunc(v))
  const a = Math.abs(v)
  const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : a === 0 ? 1 : 3
  return v.toFixed(digits)
}

/** Bits of a Bool array, index 0 first: `1 0 0 1 …`. */
export function formatBits(v: Json[]): string {
  return v.map((b) => (b === true ? '1' : b === false ? '0' : '?')).join(' ')
}

/**
 * Display text of a value (without unit). `yes`/`no` are the words for booleans (translated by
 * the caller).
 */
export function formatValue(v: Json, type: string, words: { on: string; off: string } = { on: 'ON', off: 'OFF' }): string {
  if (v === null || v === undefined) return '—'
  if (typeof v === 'boolean') return v ? words.on : words.off
  if (typeof v === 'number') return formatNumber(v, type)
  if (typeof v === 'string') {
    if (type === 'DateTime') {
      return formatDateTime(v)
    }
    return v === '' ? '""' : v
  }
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'boolean')) return formatBits(v)
    return v.map((x) => formatValue(x, type, words)).join(', ')
  }
  return JSON.stringify(v)
}

/** Fraction 0..1 of a value within its range (clamped); null when not applicable. */
export function rangeFraction(v: Json, range: [number, number] | null): number | null {
  if (!range || typeof v !== 'number' || !Number.isFinite(v)) return null
  const [lo, hi] = range
  if (!(hi > lo)) return null
  return Math.min(1, Math.max(0, (v - lo) / (hi - lo)))
}

/** Local date and time of an RFC 3339 timestamp, `YYYY-MM-DD HH:MM:SS` (unambiguous everywhere). */
export function formatDateTime(ts: string): string {
  const d = new Date(ts)
  if (Number.isNaN(d.getTime())) return ts
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

/** Local time of an RFC 3339 timestamp, HH:MM:SS. */
export function formatTime(ts: string | null): string {
  if (!ts) return '—'
  const d = new Date(ts)
  if (Number.isNaN(d.getTime())) return ts
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
}

/** m:ss or h:mm:ss for a countdown. */
export function formatCountdown(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const r = s % 60
  const mm = h ? String(m).padStart(2, '0') : String(m)
  return (h ? `${h}:` : '') + `${mm}:${String(r).padStart(2, '0')}`
}

/** Range as `0 … 100 kW`. */
export function formatRange(range: [number, number] | null, unit: string | null): string {
  if (!range) return '—'
  return `${range[0]} … ${range[1]}${unit ? ' ' + unit : ''}`
}
