// Numeric entry for writes: what a key press does to the text, and whether the text is a value
// the tag can take (type bounds, integer vs float, engineering range). The server checks again;
// this is so the operator sees the problem before confirming.

import { FLOAT_TYPES, INT_TYPES, isIntegerType } from './format'

export type NumpadKey = '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '.' | '-' | 'back' | 'clear'

export const MAX_INPUT_LENGTH = 24

/** The text after pressing `key`; keys that cannot apply to this type leave it unchanged. */
export function pressKey(text: string, key: NumpadKey, type: string): string {
  switch (key) {
    case 'back':
      return text.slice(0, -1)
    case 'clear':
      return ''
    case '-': {
      if (!allowsNegative(type)) return text
      return text.startsWith('-') ? text.slice(1) : '-' + text
    }
    case '.': {
      if (isIntegerType(type) || text.includes('.')) return text
      const digits = text.replace('-', '')
      return text + (digits === '' ? '0.' : '.')
    }
    default: {
      if (text.length >= MAX_INPUT_LENGTH) return text
      // No leading zeros: "0" then "5" becomes "5".
      if (text === '0') return key
      if (text === '-0') return '-' + key
      return text + key
    }
  }
}

function allowsNegative(type: string): boolean {
  if (FLOAT_TYPES.has(type)) return true
  const b = INT_TYPES[type]
  return b ? b[0] < 0 : true
}

export type ParseResult =
  | { ok: true; value: number | string }
  | { ok: false; error: 'empty' | 'not_a_number' | 'not_integer' | 'type_bounds' | 'out_of_range'; min?: string; max?: string }

const FLOAT32_MAX = 3.4028234663852886e38

/**
 * Parses the entered text for a tag of OPC UA `type` with optional engineering `range`.
 * Int64/UInt64 beyond 2^53 are returned as decimal strings (the wire form for those).
 */
export function parseNumeric(text: string, type: string, range: [number, number] | null = null): ParseResult {
  const t = text.trim()
  if (t === '' || t === '-') return { ok: false, error: 'empty' }
  if (!/^-?(\d+\.?\d*|\.\d+)$/.test(t)) return { ok: false, error: 'not_a_number' }
  let value: number | string
  if (isIntegerType(type)) {
    if (!/^-?\d+\.?0*$/.test(t)) return { ok: false, error: 'not_integer' }
    const big = BigInt(t.replace(/\.0*$/, ''))
    const [lo, hi] = INT_TYPES[type]
    if (big < BigInt(lo) || big > BigInt(hi)) return { ok: false, error: 'type_bounds', min: String(lo), max: String(hi) }
    value = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big.toString()
  } else {
    const v = Number(t)
    if (!Number.isFinite(v)) return { ok: false, error: 'not_a_number' }
    if (type === 'Float' && Math.abs(v) > FLOAT32_MAX)
      return { ok: false, error: 'type_bounds', min: String(-FLOAT32_MAX), max: String(FLOAT32_MAX) }
    value = v
  }
  if (range) {
    const n = typeof value === 'number' ? value : Number(value)
    if (n < range[0] || n > range[1]) return { ok: false, error: 'out_of_range', min: String(range[0]), max: String(range[1]) }
  }
  return { ok: true, value }
}

/** A Bool array with bit `i` flipped (a new array; the input is not touched). */
export function toggleBit(bits: readonly boolean[], i: number): boolean[] {
  const out = bits.slice()
  if (i >= 0 && i < out.length) out[i] = !out[i]
  return out
}

/** Reads a live value as a Bool array of `size` (missing or non-boolean elements are false). */
export function asBits(v: unknown, size: number | null): boolean[] {
  const arr = Array.isArray(v) ? v : []
  const n = size ?? arr.length
  return Array.from({ length: n }, (_, i) => arr[i] === true)
}
