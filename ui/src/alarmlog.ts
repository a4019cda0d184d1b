// Requests of the alarm journal screen (kept apart from the component so Vitest can check them).

/** Rows per journal page. */
export const PAGE = 50

/** The `alarm_journal` request for a date range (`YYYY-MM-DD`, both days included) and page. */
export function journalRequest(from: string, to: string, beforeId: number | null): { op: string; [k: string]: unknown } {
  const req: { op: string; [k: string]: unknown } = { op: 'alarm_journal', limit: PAGE }
  if (from) req.from = from
  if (to) req.to = to
  if (beforeId != null) req.before_id = beforeId
  return req
}

/** `GET /api/alarms/journal.csv` for the same range (same origin as the UI). */
export function csvUrl(from: string, to: string): string {
  const q = new URLSearchParams()
  if (from) q.set('from', from)
  if (to) q.set('to', to)
  const s = q.toString()
  return `/api/alarms/journal.csv${s ? `?${s}` : ''}`
}
