// The alarm list in the UI: the snapshot's `alarms`, then `alarm` / `alarms` pushes (an alarm
// leaves the list when it is back to normal, not shelved, in service and has its tag). Counts
// for the session bar, sorting and the priority marker of tags in alarm.

import { shallowReactive } from 'vue'
import type { AlarmPriority, AlarmView, AlarmsPush, AlarmPush } from './protocol'
import { onPush } from './pushes'

// Shallow: the list is always replaced whole (and AlarmView's recursive Json would make deep
// reactive types too deep for the type checker).
export const alarms = shallowReactive<{ list: AlarmView[] }>({ list: [] })

export const PRIORITIES: AlarmPriority[] = ['urgent', 'high', 'medium', 'low']
/** A letter per priority, so colour is never the only cue (ISA-101). */
export const PRIORITY_LETTER: Record<AlarmPriority, string> = { urgent: 'U', high: 'H', medium: 'M', low: 'L' }

const STATE_ORDER: Record<string, number> = { unack: 0, rtn_unack: 1, acked: 2, normal: 3 }

/** Whether the server would list `a` (what stays on the summary screen). */
export function isListed(a: AlarmView): boolean {
  return a.state !== 'normal' || !!a.shelved_until || a.out_of_service || a.quality === 'tag_missing'
}

/** Shelved and out-of-service alarms are not annunciated (no banner, no counts). */
export function annunciated(a: AlarmView): boolean {
  return !a.shelved_until && !a.out_of_service
}

/** State, then priority, then newest first. */
export function sortAlarms(list: AlarmView[]): AlarmView[] {
  return [...list].sort(
    (a, b) =>
      (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) ||
      PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority) ||
      (b.active_since ?? '').localeCompare(a.active_since ?? '') ||
      a.id.localeCompare(b.id),
  )
}

/** Replaces the list (snapshot). */
export function setAlarms(list: AlarmView[] | undefined): void {
  alarms.list = sortAlarms((list ?? []).filter(isListed))
}

/** Applies pushed alarms (their newest state). */
export function applyAlarms(changed: AlarmView[]): void {
  const byId = new Map(alarms.list.map((a) => [a.id, a]))
  for (const a of changed) {
    if (isListed(a)) byId.set(a.id, a)
    else byId.delete(a.id)
  }
  alarms.list = sortAlarms([...byId.values()])
}

/** Unacknowledged, annunciated alarms per priority. */
export function unackCounts(list: AlarmView[]): Record<AlarmPriority, number> {
  const c: Record<AlarmPriority, number> = { urgent: 0, high: 0, medium: 0, low: 0 }
  for (const a of list) if (annunciated(a) && (a.state === 'unack' || a.state === 'rtn_unack')) c[a.priority]++
  return c
}

/** Active or unacknowledged annunciated alarms (the banner's total). */
export function activeCount(list: AlarmView[]): number {
  return list.filter((a) => annunciated(a) && a.state !== 'normal').length
}

/** The most recently raised annunciated alarm that is not normal. */
export function newest(list: AlarmView[]): AlarmView | undefined {
  return list
    .filter((a) => annunciated(a) && a.state !== 'normal')
    .reduce<AlarmView | undefined>((n, a) => (!n || (a.active_since ?? '') > (n.active_since ?? '') ? a : n), undefined)
}

/** The message in `lang`, else English, else any language, else the text itself. */
export function alarmText(a: AlarmView, lang: string): string {
  const m = a.message
  if (typeof m === 'string') return m
  return m[lang] ?? m.en ?? Object.values(m)[0] ?? a.id
}

/** The most urgent priority of an active annunciated alarm on `plc`/`tag` (for tag markers). */
export function tagPriority(list: AlarmView[], plc: string, tag: string): AlarmPriority | null {
  let best: AlarmPriority | null = null
  for (const a of list) {
    if (a.park !== plc || a.state === 'normal' || !annunciated(a)) continue
    const name = a.tag.slice(plc.length + 1).replace(/\[\d+\]$/, '')
    if (name !== tag) continue
    if (!best || PRIORITIES.indexOf(a.priority) < PRIORITIES.indexOf(best)) best = a.priority
  }
  return best
}

let subscribed = false

/** Subscribes to the alarm pushes (once). */
export function listenAlarms(): void {
  if (subscribed) return
  subscribed = true
  onPush<AlarmPush & { [k: string]: unknown }>('alarm', (m) => applyAlarms([m.alarm]))
  onPush<AlarmsPush & { [k: string]: unknown }>('alarms', (m) => applyAlarms(m.alarms))
}

/** Whether a new unacknowledged `urgent` or `high` alarm appeared between two counts (sound). */
export function newLoudAlarm(before: Record<AlarmPriority, number>, after: Record<AlarmPriority, number>): boolean {
  return after.urgent > before.urgent || after.high > before.high
}

let audio: AudioContext | null = null

/** A short two-tone beep (Web Audio; no file to load). Silently nothing where audio is unavailable. */
export function beep(): void {
  try {
    audio ??= new AudioContext()
    const t0 = audio.currentTime
    for (const [i, f] of [880, 660].entries()) {
      const o = audio.createOscillator()
      const g = audio.createGain()
      o.frequency.value = f
      g.gain.value = 0.2
      o.connect(g).connect(audio.destination)
      o.start(t0 + i * 0.25)
      o.stop(t0 + i * 0.25 + 0.2)
    }
  } catch {
    /* no audio device */
  }
}

/** Height of one row of the alarm summary, in px (fixed, so the list can render only a window). */
export const ROW_PX = 56
/** Rows rendered above and below the visible ones (smooth scrolling on a slow panel). */
const OVERSCAN = 8

/**
 * The rows of a list of `total` fixed-height rows to render when it is scrolled to `scrollTop`
 * in a viewport `viewPx` high: `[first, end)`. A flood of 1,000 alarms then costs the DOM of a
 * screenful, not 1,000 rows (the panel's main thread stays under 50 ms per task).
 */
export function rowWindow(total: number, scrollTop: number, viewPx: number): { first: number; end: number } {
  const top = Math.floor(Math.max(0, scrollTop) / ROW_PX)
  const end = Math.min(total, top + Math.ceil(Math.max(0, viewPx) / ROW_PX) + OVERSCAN + 1)
  return { first: Math.min(Math.max(0, top - OVERSCAN), end), end }
}
