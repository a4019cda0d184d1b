// Decoder of the opt-in compact update encoding (subprotocol `stator.v1.compact`,
// docs/protocol.md): changes name their tag by its index in the last snapshot's `nodes`. The
// decoder turns them back into the JSON update shape, so the store applies both the same way.
import type { Json, PlcDelta, PlcStatus, Quality, SnapshotMsg, UpdateMsg } from './protocol'

/** The subprotocol a client offers to receive compact updates. */
export const COMPACT_PROTOCOL = 'stator.v1.compact'

/** Tag names by PLC id, in snapshot order: what compact indices refer to. */
export type TagNames = Map<string, string[]>

export function tagNames(snap: SnapshotMsg): TagNames {
  return new Map(snap.plcs.map((p) => [p.id, p.nodes.map((n) => n.name)]))
}

interface CompactPlc {
  id: string
  status: PlcStatus
  error?: string | null
  rediscovered?: boolean
  c?: unknown[][]
}

/**
 * A compact update as a JSON update. An index the snapshot does not have becomes a change with
 * an empty name, which the store treats as unknown (it asks for a fresh snapshot).
 */
export function expandCompact(msg: { seq: number; plcs: CompactPlc[] }, names: TagNames): UpdateMsg {
  const plcs: PlcDelta[] = msg.plcs.map((p) => {
    const list = names.get(p.id) ?? []
    return {
      id: p.id,
      status: p.status,
      error: p.error,
      rediscovered: p.rediscovered,
      changes: (p.c ?? []).map((c) => ({
        name: list[c[0] as number] ?? '',
        value: c[1] as Json,
        ts: c[2] as string | null,
        quality: (c.length > 3 ? c[3] : 'good') as Quality,
        reason: c.length > 4 ? (c[4] as string) : null,
      })),
    }
  })
  return { type: 'update', seq: msg.seq, plcs }
}
