import { describe, expect, it } from 'vitest'
import type { SnapshotMsg } from './protocol'
import { applySnapshot, applyUpdate, createLiveState, findTag, groupTags, isStale, keyTags, staleReason } from './store'

function snap(): SnapshotMsg {
  return {
    type: 'snapshot',
    seq: 10,
    plcs: [
      {
        id: 'eco_solar',
        name: 'Eco Solar',
        url: 'opc.tcp://x:4840',
        status: 'CONNECTED',
        nodes: [
          { name: 'Active_Power_kW', node_id: 'ns=4;i=1', type: 'Float', value: 1.5, quality: 'good', ts: null, writable: false },
          { name: 'Site_Name', node_id: 'ns=4;i=2', type: 'String', value: 'x', quality: 'good', ts: null, writable: false },
          { name: 'Meteo/Irradiance_W_m2', node_id: 'ns=4;i=3', type: 'Float', value: 600, quality: 'good', ts: null, writable: false, range: [0, 1400] },
          { name: 'CMD_Instant_Cutoff', node_id: 'ns=4;i=4', type: 'Boolean', array_size: 8, value: [false, false, false, false, false, false, false, false], quality: 'good', ts: null, writable: true },
          { name: 'Setpoints/Limit_pct', node_id: 'ns=4;i=5', type: 'Float', value: 100, quality: 'good', ts: null, writable: true },
        ],
      },
      { id: 'isiada', name: 'Isiada', url: 'opc.tcp://y:4840', status: 'DISCONNECTED', nodes: [] },
    ],
  }
}

describe('live store', () => {
  it('applies a snapshot then deltas by plc id and tag name', () => {
    const s = createLiveState()
    applySnapshot(s, snap())
    expect(s.ready).toBe(true)
    expect(s.seq).toBe(10)
    expect(findTag(s, 'eco_solar', 'Meteo/Irradiance_W_m2')?.folder).toBe('Meteo')
    expect(findTag(s, 'eco_solar', 'Meteo/Irradiance_W_m2')?.unit).toBe('W/m²')
    expect(findTag(s, 'eco_solar', 'Meteo/Irradiance_W_m2')?.range).toEqual([0, 1400])

    const ok = applyUpdate(s, {
      type: 'update',
      seq: 11,
      plcs: [{ id: 'eco_solar', status: 'CONNECTED', changes: [{ name: 'Active_Power_kW', value: 2.5, quality: 'good', ts: '2026-01-01T00:00:00Z' }] }],
    })
    expect(ok).toBe(true)
    expect(s.seq).toBe(11)
    expect(findTag(s, 'eco_solar', 'Active_Power_kW')?.value).toBe(2.5)
    expect(findTag(s, 'eco_solar', 'Active_Power_kW')?.ts).toBe('2026-01-01T00:00:00Z')
    // Untouched tags keep their values.
    expect(findTag(s, 'eco_solar', 'Site_Name')?.value).toBe('x')
  })

  it('ignores deltas older than the snapshot and before any snapshot', () => {
    const s = createLiveState()
    expect(applyUpdate(s, { seq: 5, plcs: [] })).toBe(false)
    applySnapshot(s, snap())
    const old = applyUpdate(s, { seq: 9, plcs: [{ id: 'eco_solar', status: 'CONNECTED', changes: [{ name: 'Active_Power_kW', value: 99, quality: 'good', ts: null }] }] })
    expect(old).toBe(false)
    expect(findTag(s, 'eco_solar', 'Active_Power_kW')?.value).toBe(1.5)
  })

  it('applies PLC status changes and asks for a snapshot on rediscovery or unknown tags', () => {
    const s = createLiveState()
    applySnapshot(s, snap())
    applyUpdate(s, { seq: 12, plcs: [{ id: 'eco_solar', status: 'ERROR', error: 'connection lost', changes: [] }] })
    expect(s.parks[0].status).toBe('ERROR')
    expect(s.parks[0].error).toBe('connection lost')
    expect(s.needsSnapshot).toBe(false)
    applyUpdate(s, { seq: 13, plcs: [{ id: 'eco_solar', status: 'CONNECTED', changes: [{ name: 'New_Tag', value: 1, quality: 'good', ts: null }] }] })
    expect(s.needsSnapshot).toBe(true)
    applySnapshot(s, snap())
    expect(s.needsSnapshot).toBe(false)
    applyUpdate(s, { seq: 14, plcs: [{ id: 'eco_solar', status: 'CONNECTED', rediscovered: true, changes: [] }] })
    expect(s.needsSnapshot).toBe(true)
  })

  it('marks values stale when quality is not good or the PLC is not connected', () => {
    const s = createLiveState()
    applySnapshot(s, snap())
    const park = s.parks[0]
    const tag = findTag(s, 'eco_solar', 'Active_Power_kW')!
    expect(isStale(tag, park)).toBe(false)
    expect(staleReason(tag, park)).toBeNull()
    applyUpdate(s, { seq: 11, plcs: [{ id: 'eco_solar', status: 'CONNECTED', changes: [{ name: 'Active_Power_kW', value: 1, quality: 'bad', reason: 'BadSensorFailure', ts: null }] }] })
    expect(isStale(tag, park)).toBe(true)
    expect(staleReason(tag, park)).toBe('BadSensorFailure')
    applyUpdate(s, { seq: 12, plcs: [{ id: 'eco_solar', status: 'CONNECTED', changes: [{ name: 'Active_Power_kW', value: 1, quality: 'uncertain', ts: null }] }] })
    expect(isStale(tag, park)).toBe(true)
    applyUpdate(s, { seq: 13, plcs: [{ id: 'eco_solar', status: 'CONNECTING', changes: [{ name: 'Active_Power_kW', value: 1, quality: 'good', ts: null }] }] })
    expect(isStale(tag, park)).toBe(true)
    expect(staleReason(tag, park)).toBe('not_connected')
    expect(isStale(tag, undefined)).toBe(true)
  })

  it('picks key tags: marked ones, else the first numeric scalars', () => {
    const s = createLiveState()
    applySnapshot(s, snap())
    // Read-only process values with units first (root before folders), setpoints last.
    expect(keyTags(s.parks[0]).map((t) => t.name)).toEqual(['Active_Power_kW', 'Meteo/Irradiance_W_m2', 'Setpoints/Limit_pct'])
    const m2 = snap()
    m2.plcs[0].nodes.unshift(
      { name: 'SP_Mode', node_id: 'x1', type: 'Int16', value: 1, quality: 'good', ts: null, writable: true },
      { name: 'Status_Word', node_id: 'x2', type: 'UInt16', value: 1, quality: 'good', ts: null, writable: false },
      { name: 'Grid_Frequency_Hz', node_id: 'x3', type: 'Double', value: 50, quality: 'good', ts: null, writable: false },
    )
    applySnapshot(s, m2)
    expect(keyTags(s.parks[0]).map((t) => t.name)).toEqual(['Active_Power_kW', 'Grid_Frequency_Hz', 'Meteo/Irradiance_W_m2', 'Status_Word'])
    const m = snap()
    m.plcs[0].nodes[1].key = true
    applySnapshot(s, m)
    expect(keyTags(s.parks[0]).map((t) => t.name)).toEqual(['Site_Name'])
  })

  it('groups by folder (root first) and filters by name', () => {
    const s = createLiveState()
    applySnapshot(s, snap())
    expect(groupTags(s.parks[0]).map((g) => g.folder)).toEqual(['', 'Meteo', 'Setpoints'])
    expect(groupTags(s.parks[0])[0].tags.map((t) => t.name)).toEqual(['Active_Power_kW', 'CMD_Instant_Cutoff', 'Site_Name'])
    const f = groupTags(s.parks[0], 'irrad')
    expect(f).toHaveLength(1)
    expect(f[0].tags[0].leaf).toBe('Irradiance_W_m2')
    expect(groupTags(s.parks[0], 'nothing-like-this')).toEqual([])
  })
})
