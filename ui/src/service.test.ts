import { describe, expect, it } from 'vitest'
import { deliverPush } from './pushes'
import { applyServiceList, banners } from './service'

describe('service banners', () => {
  it('follow the snapshot list and the pushes', () => {
    applyServiceList([{ park: 'alpha', active: true, by: 'sam', since: '2026-12-01T00:00:00Z', reason: 'pump' }])
    expect(banners.get('alpha')?.by).toBe('sam')
    expect(deliverPush({ type: 'service', park: 'beta', active: true, by: 'ann', since: '2026-12-01T00:00:00Z', reason: 'x' })).toBe(true)
    expect([...banners.keys()].sort()).toEqual(['alpha', 'beta'])
    deliverPush({ type: 'service', park: 'alpha', active: false })
    expect([...banners.keys()]).toEqual(['beta'])
    applyServiceList(undefined)
    expect(banners.size).toBe(0)
  })
})
