// Pure helpers of the service screens (service mode, calibration, records, diagnostics): which
// entry the session bar offers, the step of a calibration run, what the review shows, and the
// units of the diagnostics figures. The server decides everything; this only lays it out.
import type { CalibrationPoint, CalibrationRun, Permission } from './protocol'

export type ServiceTab = 'service' | 'calibration' | 'records' | 'diagnostics'

/** The service tabs a role is offered, in order (empty: no Service entry at all). */
export function serviceTabs(may: (perm: Permission) => boolean): ServiceTab[] {
  const tabs: ServiceTab[] = []
  if (may('service_mode')) tabs.push('service', 'calibration', 'records')
  if (may('diagnostics')) tabs.push('diagnostics')
  return tabs
}

export type CalStep = 'pick' | 'ref1' | 'ref2' | 'review' | 'done' | 'cancelled'

/** Where a run stands: no run → pick one; 0/1/2 points → the next reference or the review. */
export function calStep(run: CalibrationRun | null): CalStep {
  if (!run) return 'pick'
  if (run.state === 'cancelled') return 'cancelled'
  if (run.state === 'applied') return 'done'
  if (run.points.length === 0) return 'ref1'
  if (run.points.length === 1) return 'ref2'
  return 'review'
}

/** A point's spread in the calibration's unit (raw spread × |old gain|), as the server checks it. */
export function spreadInUnit(p: CalibrationPoint, oldGain: number): number {
  return p.spread * Math.abs(oldGain)
}

/** What the PLC will read at a captured point with the given gain and offset. */
export function reading(p: CalibrationPoint, gain: number, offset: number): number {
  return p.raw * gain + offset
}

export interface ReviewRow {
  reference: number
  raw: number
  spread: number
  /** Reading with the old gain/offset (as found) and its error. */
  asFound: number
  asFoundError: number
  /** Expected reading with the new gain/offset (as left) and its error. */
  asLeft: number | null
  asLeftError: number | null
}

/** The review table: per point the as-found reading and the expected as-left reading. */
export function reviewRows(run: CalibrationRun): ReviewRow[] {
  return run.points.map((p) => {
    const asFound = reading(p, run.old_gain, run.old_offset)
    const asLeft = run.gain !== undefined && run.offset !== undefined ? reading(p, run.gain, run.offset) : null
    return {
      reference: p.reference,
      raw: p.raw,
      spread: p.spread,
      asFound,
      asFoundError: asFound - p.reference,
      asLeft,
      asLeftError: asLeft === null ? null : asLeft - p.reference,
    }
  })
}

/** The worst expected as-left error over the points (null before gain/offset are known). */
export function expectedAsLeftError(run: CalibrationRun): number | null {
  let worst: number | null = null
  for (const r of reviewRows(run)) {
    if (r.asLeftError === null) return null
    if (worst === null || Math.abs(r.asLeftError) > Math.abs(worst)) worst = r.asLeftError
  }
  return worst
}

/** Whether an error (in the unit) is within the tolerance. */
export function withinTolerance(error: number | null | undefined, tolerance: number): boolean {
  return error !== null && error !== undefined && Math.abs(error) <= tolerance
}

/** Decimals that show the tolerance's resolution (at least one more digit than it has). */
export function decimalsFor(tolerance: number): number {
  if (!(tolerance > 0)) return 3
  return Math.min(6, Math.max(1, Math.ceil(-Math.log10(tolerance)) + 2))
}

/** Signed number with a fixed number of decimals ("+0.012", "−0.300"). */
export function signed(v: number, decimals: number): string {
  const s = Math.abs(v).toFixed(decimals)
  if (Number(s) === 0) return s
  return (v < 0 ? '−' : '+') + s
}

/** Bytes as B / KiB / MiB / GiB with one decimal above bytes. */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`
}

/** A duration in seconds as "3 d 4 h", "2 h 5 min", "4 min 2 s" or "12 s". */
export function formatDuration(s: number): string {
  const t = Math.max(0, Math.floor(s))
  const d = Math.floor(t / 86400)
  const h = Math.floor((t % 86400) / 3600)
  const m = Math.floor((t % 3600) / 60)
  const sec = t % 60
  if (d > 0) return `${d} d ${h} h`
  if (h > 0) return `${h} h ${m} min`
  if (m > 0) return `${m} min ${sec} s`
  return `${sec} s`
}

/** Milliseconds with a sensible precision ("0.42 ms", "12.3 ms", "1520 ms"), "–" when unknown. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–'
  if (ms < 1) return `${ms.toFixed(2)} ms`
  if (ms < 100) return `${ms.toFixed(1)} ms`
  return `${Math.round(ms)} ms`
}

/** The certificate of record `n` (HTTP, Bearer). */
export function certificateUrl(n: number): string {
  return `/api/calibration/records/${encodeURIComponent(String(n))}.html`
}
