import { describe, expect, it } from 'vitest'
import { formatCountdown, formatNumber, formatRange, formatValue, guessUnit, rangeFraction, tagLabel } from './format'

describe('value formatting', () => {
  it('formats floats by magnitude and integers exactly', () => {
    expect(formatNumber(1234.56, 'Float')).toBe('1235')
    expect(formatNumber(123.456, 'Float')).toBe('123.5')
    expect(formatNumber(50.0123, 'Double')).toBe('50.01')
    expect(formatNumber(0.12345, 'Double')).toBe('0.123')
    expect(formatNumber(0, 'Double')).toBe('0.0')
    expect(formatNumber(-32768, 'Int16')).toBe('-32768')
  })

  it('formats booleans, bit arrays, strings, null and big integers', () => {
    expect(formatValue(true, 'Boolean')).toBe('ON')
    expect(formatValue(false, 'Boolean', { on: 'EIN', off: 'AUS' })).toBe('AUS')
    expect(formatValue([true, false, false, true], 'Boolean')).toBe('1 0 0 1')
    expect(formatValue('Eco Solar', 'String')).toBe('Eco Solar')
    expect(formatValue(null, 'Float')).toBe('—')
    expect(formatValue('18446744073709551615', 'UInt64')).toBe('18446744073709551615')
    expect(formatValue([1.5, 2.25], 'Float')).toBe('1.50, 2.25')
    expect(formatValue('2026-11-23T10:00:00Z', 'DateTime')).toMatch(/^2026-11-2[234] \d\d:00:00$/)
    expect(formatValue('garbage', 'DateTime')).toBe('garbage')
  })

  it('guesses units from S7 names and makes labels without them', () => {
    expect(guessUnit('Active_Power_kW')).toBe('kW')
    expect(guessUnit('Meteo/Irradiance_W_m2')).toBe('W/m²')
    expect(guessUnit('Grid_Frequency_Hz')).toBe('Hz')
    expect(guessUnit('Module_Temp_C')).toBe('°C')
    expect(guessUnit('Limit_pct')).toBe('%')
    expect(guessUnit('Status_Word')).toBeNull()
    expect(guessUnit('Meteo/Wind_Speed_m_s')).toBe('m/s')
    expect(guessUnit('Heartbeat_ms')).toBe('ms')
    expect(guessUnit('SP_Ramp_Rate_kW_s')).toBe('kW/s')
    expect(guessUnit('Energy_Total_Wh')).toBe('Wh')
    expect(tagLabel('Active_Power_kW')).toBe('Active Power')
    expect(tagLabel('Status_Word')).toBe('Status Word')
  })

  it('places a value within its range, clamped', () => {
    expect(rangeFraction(50, [0, 100])).toBe(0.5)
    expect(rangeFraction(150, [0, 100])).toBe(1)
    expect(rangeFraction(-5, [0, 100])).toBe(0)
    expect(rangeFraction(50, null)).toBeNull()
    expect(rangeFraction('50', [0, 100])).toBeNull()
    expect(rangeFraction(5, [10, 10])).toBeNull()
    expect(formatRange([0, 100], 'kW')).toBe('0 … 100 kW')
    expect(formatRange(null, 'kW')).toBe('—')
  })

  it('formats the idle countdown', () => {
    expect(formatCountdown(0)).toBe('0:00')
    expect(formatCountdown(59.9)).toBe('0:59')
    expect(formatCountdown(1800)).toBe('30:00')
    expect(formatCountdown(7200)).toBe('2:00:00')
    expect(formatCountdown(-3)).toBe('0:00')
  })
})
