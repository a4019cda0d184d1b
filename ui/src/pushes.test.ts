import { describe, expect, it } from 'vitest'
import { deliverPush, onPush } from './pushes'

describe('pushes', () => {
  it('reach the subscribers of their type only, until they unsubscribe', () => {
    const got: unknown[] = []
    const off = onPush('alarm', (m) => got.push(m.n))
    onPush('message', () => got.push('wrong'))
    expect(deliverPush({ type: 'alarm', n: 1 })).toBe(true)
    off()
    expect(deliverPush({ type: 'alarm', n: 2 })).toBe(false)
    expect(got).toEqual([1])
  })

  it('a failing handler does not stop the others', () => {
    const got: number[] = []
    onPush('x', () => {
      throw new Error('boom')
    })
    onPush('x', () => got.push(1))
    deliverPush({ type: 'x' })
    expect(got).toEqual([1])
  })
})
