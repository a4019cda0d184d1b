import { describe, expect, it } from 'vitest'
import { activeCount, alarms, alarmText, applyAlarms, newest, newLoudAlarm, ROW_PX, rowWindow, setAlarms, sortAlarms, tagPriority, unackCounts } from './alarms'
import { deliverPush } from './pushes'
import { listenAlarms } from './alarms'
import type { AlarmView } from './protocol'
import { alarms_push, alarm_push } from './wire-samples'

function a(id: string, over: Partial<AlarmView> = {}): AlarmView {
  return {
    id,
    park: 'alpha',
    tag: 'alpha/P',
    condition: 'high',
    priority: 'high',
    state: 'unack',
    shelved_until: null,
    out_of_service: false,
    message: { en: `msg ${id}`, de: `Meldung ${id}` },
    value: 1,
    limit: 0,
    active_since: '2026-11-23T10:00:00Z',
    acked_by: null,
    acked_at: null,
    comment: null,
    quality: 'good',
    ...over,
  }
}

describe('alarm list', () => {
  it('sorts by state, then priority, then newest first', () => {
    const list = sortAlarms([
      a('acked', { state: 'acked', priority: 'urgent' }),
      a('low', { priority: 'low' }),
      a('old', { priority: 'urgent', active_since: '2026-11-23T09:00:00Z' }),
      a('new', { priority: 'urgent', active_since: '2026-11-23T11:00:00Z' }),
      a('rtn', { state: 'rtn_unack', priority: 'urgent' }),
    ])
    expect(list.map((x) => x.id)).toEqual(['new', 'old', 'low', 'rtn', 'acked'])
  })

  it('applies pushes and drops alarms back to normal', () => {
    setAlarms([a('x'), a('y', { state: 'acked' })])
    applyAlarms([a('x', { state: 'normal' }), a('z', { priority: 'urgent' })])
    expect(alarms.list.map((x) => x.id)).toEqual(['z', 'y'])
    applyAlarms([a('y', { state: 'normal', out_of_service: true })])
    expect(alarms.list.map((x) => x.id)).toEqual(['z', 'y'])
  })

  it('counts unacknowledged annunciated alarms by priority and finds the newest', () => {
    const list = [
      a('u', { priority: 'urgent', active_since: '2026-11-23T12:00:00Z' }),
      a('r', { state: 'rtn_unack', priority: 'low' }),
      a('k', { state: 'acked' }),
      a('s', { shelved_until: '2026-11-23T13:00:00Z', active_since: '2026-11-23T14:00:00Z' }),
      a('o', { out_of_service: true }),
    ]
    expect(unackCounts(list)).toEqual({ urgent: 1, high: 0, medium: 0, low: 1 })
    expect(activeCount(list)).toBe(3)
    expect(newest(list)?.id).toBe('u')
  })

  it('sounds only for new unacknowledged urgent or high alarms', () => {
    const z = { urgent: 0, high: 0, medium: 0, low: 0 }
    expect(newLoudAlarm(z, { ...z, high: 1 })).toBe(true)
    expect(newLoudAlarm(z, { ...z, medium: 3, low: 1 })).toBe(false)
    expect(newLoudAlarm({ ...z, urgent: 2 }, { ...z, urgent: 1 })).toBe(false)
  })

  it('falls back from the language to English to the text', () => {
    expect(alarmText(a('x'), 'de')).toBe('Meldung x')
    expect(alarmText(a('x'), 'pl')).toBe('msg x')
    expect(alarmText(a('x', { message: 'plain' }), 'pl')).toBe('plain')
  })

  it('marks tags in alarm with the most urgent priority, array elements included', () => {
    const list = [a('1', { tag: 'alpha/C[3]', priority: 'medium' }), a('2', { tag: 'alpha/C[4]', priority: 'urgent' }), a('3', { state: 'normal', tag: 'alpha/P', quality: 'tag_missing' })]
    expect(tagPriority(list, 'alpha', 'C')).toBe('urgent')
    expect(tagPriority(list, 'alpha', 'P')).toBeNull()
    expect(tagPriority(list, 'beta', 'C')).toBeNull()
  })

  it('takes both push shapes from the wire', () => {
    listenAlarms()
    setAlarms([])
    expect(deliverPush(alarm_push as never)).toBe(true)
    expect(alarms.list.map((x) => x.id)).toEqual([alarm_push.alarm.id])
    setAlarms([])
    deliverPush(alarms_push as never)
    expect(alarms.list.length).toBe(alarms_push.alarms.length)
  })
})

describe('alarm summary window', () => {
  it('renders a screenful plus overscan, never past the ends', () => {
    expect(rowWindow(0, 0, 300)).toEqual({ first: 0, end: 0 })
    expect(rowWindow(3, 0, 300)).toEqual({ first: 0, end: 3 })
    // 1,000 rows at the top: 6 visible (300 px) + 8 below + 1.
    expect(rowWindow(1000, 0, 300)).toEqual({ first: 0, end: 15 })
    // Scrolled to row 500: 8 above, 6 visible, 8 below + 1.
    expect(rowWindow(1000, 500 * ROW_PX, 300)).toEqual({ first: 492, end: 515 })
    // At the bottom (and past it, as an elastic scroll may report).
    expect(rowWindow(1000, 1000 * ROW_PX, 300)).toEqual({ first: 992, end: 1000 })
    expect(rowWindow(10, 1e6, 300)).toEqual({ first: 10, end: 10 })
  })
})
