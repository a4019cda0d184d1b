import { describe, expect, it } from 'vitest'
import { asBits, parseNumeric, pressKey, toggleBit, type NumpadKey } from './numpad'

function type(keys: string, t: string): string {
  let s = ''
  for (const k of keys) s = pressKey(s, (k === '<' ? 'back' : k) as NumpadKey, t)
  return s
}

describe('numeric pad entry', () => {
  it('builds text from keys according to the type', () => {
    expect(type('12.5', 'Float')).toBe('12.5')
    expect(type('12.5', 'Int16')).toBe('125') // no decimal point for integers
    expect(type('.5', 'Double')).toBe('0.5')
    expect(type('1..2', 'Double')).toBe('1.2')
    expect(type('007', 'Int32')).toBe('7') // no leading zeros
    expect(type('12-', 'Int16')).toBe('-12') // sign toggles
    expect(type('12--', 'Int16')).toBe('12')
    expect(type('12-', 'UInt16')).toBe('12') // unsigned: no sign
    expect(type('123<', 'Int16')).toBe('12')
    expect(pressKey('123', 'clear', 'Int16')).toBe('')
  })

  it('parses within the OPC UA type bounds', () => {
    expect(parseNumeric('32767', 'Int16')).toEqual({ ok: true, value: 32767 })
    expect(parseNumeric('-32768', 'Int16')).toEqual({ ok: true, value: -32768 })
    expect(parseNumeric('32768', 'Int16')).toMatchObject({ ok: false, error: 'type_bounds', min: '-32768', max: '32767' })
    expect(parseNumeric('70000', 'Int16')).toMatchObject({ ok: false, error: 'type_bounds' })
    expect(parseNumeric('-1', 'UInt16')).toMatchObject({ ok: false, error: 'type_bounds' })
    expect(parseNumeric('256', 'Byte')).toMatchObject({ ok: false, error: 'type_bounds' })
    expect(parseNumeric('-129', 'SByte')).toMatchObject({ ok: false, error: 'type_bounds' })
    expect(parseNumeric('4294967295', 'UInt32')).toEqual({ ok: true, value: 4294967295 })
  })

  it('rejects fractions for integers but accepts them for floats', () => {
    expect(parseNumeric('1.5', 'Int16')).toMatchObject({ ok: false, error: 'not_integer' })
    expect(parseNumeric('2.0', 'Int16')).toEqual({ ok: true, value: 2 })
    expect(parseNumeric('1.5', 'Float')).toEqual({ ok: true, value: 1.5 })
    expect(parseNumeric('-0.25', 'Double')).toEqual({ ok: true, value: -0.25 })
  })

  it('rejects empty and malformed text', () => {
    expect(parseNumeric('', 'Float')).toMatchObject({ ok: false, error: 'empty' })
    expect(parseNumeric('-', 'Float')).toMatchObject({ ok: false, error: 'empty' })
    expect(parseNumeric('abc', 'Float')).toMatchObject({ ok: false, error: 'not_a_number' })
    expect(parseNumeric('1e5', 'Float')).toMatchObject({ ok: false, error: 'not_a_number' })
    expect(parseNumeric('NaN', 'Double')).toMatchObject({ ok: false, error: 'not_a_number' })
    expect(parseNumeric('1.2.3', 'Double')).toMatchObject({ ok: false, error: 'not_a_number' })
  })

  it('checks the engineering range', () => {
    expect(parseNumeric('100', 'Float', [0, 100])).toEqual({ ok: true, value: 100 })
    expect(parseNumeric('100.1', 'Float', [0, 100])).toMatchObject({ ok: false, error: 'out_of_range', min: '0', max: '100' })
    expect(parseNumeric('-1', 'Int16', [0, 100])).toMatchObject({ ok: false, error: 'out_of_range' })
  })

  it('keeps 64-bit integers beyond 2^53 exact as strings', () => {
    expect(parseNumeric('9007199254740993', 'Int64')).toEqual({ ok: true, value: '9007199254740993' })
    expect(parseNumeric('18446744073709551615', 'UInt64')).toEqual({ ok: true, value: '18446744073709551615' })
    expect(parseNumeric('18446744073709551616', 'UInt64')).toMatchObject({ ok: false, error: 'type_bounds' })
    expect(parseNumeric('1e39', 'Float')).toMatchObject({ ok: false })
    expect(parseNumeric('400000000000000000000000000000000000000', 'Float')).toMatchObject({ ok: false, error: 'type_bounds' })
  })

  it('handles Bool arrays bit by bit', () => {
    const bits = asBits([false, true, false], 8)
    expect(bits).toEqual([false, true, false, false, false, false, false, false])
    const flipped = toggleBit(bits, 3)
    expect(flipped[3]).toBe(true)
    expect(bits[3]).toBe(false) // input untouched
    expect(toggleBit(bits, 9)).toEqual(bits)
    expect(asBits(null, null)).toEqual([])
  })
})
