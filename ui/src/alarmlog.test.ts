import { describe, expect, it } from 'vitest'
import { csvUrl, journalRequest, PAGE } from './alarmlog'

describe('alarm journal requests', () => {
  it('pages by before_id within a date range', () => {
    expect(journalRequest('', '', null)).toEqual({ op: 'alarm_journal', limit: PAGE })
    expect(journalRequest('2026-11-01', '2026-11-30', 77)).toEqual({ op: 'alarm_journal', limit: PAGE, from: '2026-11-01', to: '2026-11-30', before_id: 77 })
  })
  it('asks the server for the CSV of the same range', () => {
    expect(csvUrl('', '')).toBe('/api/alarms/journal.csv')
    expect(csvUrl('2026-11-01', '')).toBe('/api/alarms/journal.csv?from=2026-11-01')
  })
})
