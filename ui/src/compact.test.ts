import { describe, expect, it } from 'vitest'
import { expandCompact, tagNames } from './compact'
import { applySnapshot, applyUpdate, createLiveState } from './store'
import type { SnapshotMsg } from './protocol'

const node = (name: string) => ({ name, node_id: name, type: 'Float', value: 0, quality: 'good' as const, ts: null, writable: false })
const snap: SnapshotMsg = {
  seq: 1,
  plcs: [{ id: 'a', name: 'A', url: '', status: 'CONNECTED', nodes: [node('P'), node('Q'), node('R')] }],
} as unknown as SnapshotMsg

describe('compact updates', () => {
  it('expand to the same store state as the JSON update', () => {
    const compact = { seq: 2, plcs: [{ id: 'a', status: 'CONNECTED' as const, c: [[2, 7, 't2'], [0, 1.5, 't1', 'uncertain'], [1, null, null, 'bad', 'no_value']] }] }
    const json = {
      type: 'update' as const,
      seq: 2,
      plcs: [
        {
          id: 'a',
          status: 'CONNECTED' as const,
          changes: [
            { name: 'R', value: 7, quality: 'good' as const, ts: 't2' },
            { name: 'P', value: 1.5, quality: 'uncertain' as const, ts: 't1' },
            { name: 'Q', value: null, quality: 'bad' as const, reason: 'no_value', ts: null },
          ],
        },
      ],
    }
    const a = createLiveState()
    const b = createLiveState()
    applySnapshot(a, snap)
    applySnapshot(b, snap)
    expect(applyUpdate(a, expandCompact(compact, tagNames(snap)))).toBe(true)
    expect(applyUpdate(b, json)).toBe(true)
    expect(JSON.parse(JSON.stringify(a))).toEqual(JSON.parse(JSON.stringify(b)))
    expect(a.parks[0].tags[2].value).toBe(7)
    expect(a.needsSnapshot).toBe(false)
  })

  it('an index the snapshot lacks or a rediscovery asks for a fresh snapshot', () => {
    const s = createLiveState()
    applySnapshot(s, snap)
    applyUpdate(s, expandCompact({ seq: 2, plcs: [{ id: 'a', status: 'CONNECTED', c: [[9, 1, 't']] }] }, tagNames(snap)))
    expect(s.needsSnapshot).toBe(true)
    const r = createLiveState()
    applySnapshot(r, snap)
    const u = expandCompact({ seq: 2, plcs: [{ id: 'a', status: 'CONNECTED', rediscovered: true }] }, tagNames(snap))
    expect(u.plcs[0].changes).toEqual([])
    applyUpdate(r, u)
    expect(r.needsSnapshot).toBe(true)
  })
})
