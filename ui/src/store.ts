// The live picture in the UI: a snapshot, then deltas applied by PLC id + tag name. Tracks the
// sequence number, each PLC's status, and whether a value may be trusted (stale otherwise).

import { reactive } from 'vue'
import type { Json, NodeSnapshot, PlcStatus, Quality, SnapshotMsg, UpdateMsg } from './protocol'
import { guessUnit, isNumericType } from './format'

export interface Tag {
  plc: string
  name: string
  /** Folder path (`Meteo`), '' at the root. */
  folder: string
  /** Last path segment (`Irradiance_W_m2`). */
  leaf: string
  node_id: string
  type: string
  array_size: number | null
  value: Json
  quality: Quality
  reason: string | null
  ts: string | null
  writable: boolean
  unit: string | null
  range: [number, number] | null
  key: boolean
  description: string | null
}

export interface Park {
  id: string
  name: string
  url: string
  status: PlcStatus
  error: string | null
  server_name: string | null
  tags: Tag[]
}

export interface LiveState {
  seq: number
  /** False until the first snapshot arrived. */
  ready: boolean
  parks: Park[]
  /** Set when a delta says the tag list changed: the transport should fetch a snapshot. */
  needsSnapshot: boolean
}

/** A value is stale when its quality is not good or its PLC is not connected. */
export function isStale(tag: Pick<Tag, 'quality'>, park: Pick<Park, 'status'> | undefined): boolean {
  return tag.quality !== 'good' || !park || park.status !== 'CONNECTED'
}

/** Why a value is stale, for the label next to it; null when it is fresh. */
export function staleReason(tag: Pick<Tag, 'quality' | 'reason'>, park: Pick<Park, 'status'> | undefined): string | null {
  if (!park || park.status !== 'CONNECTED') return 'not_connected'
  if (tag.quality !== 'good') return tag.reason || tag.quality
  return null
}

function splitName(name: string): [string, string] {
  const i = name.lastIndexOf('/')
  return i < 0 ? ['', name] : [name.slice(0, i), name.slice(i + 1)]
}

function toTag(plc: string, n: NodeSnapshot): Tag {
  const [folder, leaf] = splitName(n.name)
  return {
    plc,
    name: n.name,
    folder,
    leaf,
    node_id: n.node_id,
    type: n.type,
    array_size: n.array_size ?? null,
    value: n.value,
    quality: n.quality,
    reason: n.reason ?? null,
    ts: n.ts,
    writable: n.writable,
    unit: n.unit ?? guessUnit(n.name),
    range: Array.isArray(n.range) && n.range.length === 2 ? [n.range[0], n.range[1]] : null,
    key: n.key === true,
    description: n.description ?? null,
  }
}

export function createLiveState(): LiveState {
  return reactive({ seq: 0, ready: false, parks: [], needsSnapshot: false }) as LiveState
}

// Per-park name → index maps, kept outside the reactive state (they are lookups, not display).
const indexes = new WeakMap<object, Map<string, number>>()

function indexOf(park: Park): Map<string, number> {
  let m = indexes.get(park.tags)
  if (!m) {
    m = new Map(park.tags.map((t, i) => [t.name, i]))
    indexes.set(park.tags, m)
  }
  return m
}

/** Replaces the whole picture. */
export function applySnapshot(s: LiveState, msg: SnapshotMsg): void {
  s.parks = msg.plcs.map((p) => ({
    id: p.id,
    name: p.name,
    url: p.url,
    status: p.status,
    error: p.error ?? null,
    server_name: p.server_name ?? null,
    tags: p.nodes.map((n) => toTag(p.id, n)),
  }))
  s.seq = msg.seq
  s.ready = true
  s.needsSnapshot = false
}

/**
 * Applies a delta. Returns false when it was ignored (older than what we hold, or before any
 * snapshot). Unknown PLCs or tags (e.g. a grant that changed) request a fresh snapshot.
 */
export function applyUpdate(s: LiveState, msg: UpdateMsg): boolean {
  if (!s.ready || msg.seq <= s.seq) return false
  for (const d of msg.plcs) {
    const park = s.parks.find((p) => p.id === d.id)
    if (!park) {
      s.needsSnapshot = true
      continue
    }
    park.status = d.status
    park.error = d.error ?? null
    if (d.rediscovered) s.needsSnapshot = true
    const idx = indexOf(park)
    for (const c of d.changes) {
      const i = idx.get(c.name)
      if (i === undefined) {
        s.needsSnapshot = true
        continue
      }
      const t = park.tags[i]
      t.value = c.value
      t.quality = c.quality
      t.reason = c.reason ?? null
      t.ts = c.ts
    }
  }
  s.seq = msg.seq
  return true
}

export function findPark(s: LiveState, id: string): Park | undefined {
  return s.parks.find((p) => p.id === id)
}

export function findTag(s: LiveState, plc: string, name: string): Tag | undefined {
  const p = findPark(s, plc)
  if (!p) return undefined
  const i = indexOf(p).get(name)
  return i === undefined ? undefined : p.tags[i]
}

/**
 * Overview values: tags marked `key`, else `n` numeric scalar tags, process values first:
 * read-only before writable, with a unit before without, root before folders, then by name (the
 * PLC's browse order is not stable across reconnects, the overview must be).
 */
export function keyTags(p: Park, n = 4): Tag[] {
  const marked = p.tags.filter((t) => t.key)
  if (marked.length) return marked
  const rank = (t: Tag) => (t.writable ? 4 : 0) + (t.unit ? 0 : 2) + (t.folder ? 1 : 0)
  return p.tags
    .filter((t) => isNumericType(t.type) && t.array_size == null && !Array.isArray(t.value))
    .sort((a, b) => rank(a) - rank(b) || byName(a.name, b.name))
    .slice(0, n)
}

/** Natural order of tag names (`T2` before `T10`), case-insensitive. */
export function byName(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: 'base' })
}

/** Tags grouped by folder, root first, then folders alphabetically; `filter` matches the name. */
export function groupTags(p: Park, filter = ''): { folder: string; tags: Tag[] }[] {
  const f = filter.trim().toLowerCase()
  const groups = new Map<string, Tag[]>()
  for (const t of p.tags) {
    if (f && !t.name.toLowerCase().includes(f)) continue
    let g = groups.get(t.folder)
    if (!g) groups.set(t.folder, (g = []))
    g.push(t)
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b)))
    .map(([folder, tags]) => ({ folder, tags: tags.sort((a, b) => byName(a.leaf, b.leaf)) }))
}

/** Counts of PLC states, for the session bar. */
export function staleCount(p: Park): number {
  return p.tags.filter((t) => isStale(t, p)).length
}
