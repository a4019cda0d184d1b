import { describe, expect, it } from 'vitest'
import { applyReceipt, applyToRows, convOf, mergeMessage, unreadTotal } from './chat'
import type { ConversationRow, Message } from './protocol'

const msg = (id: number, from: string, to: string, text = 't'): Message => ({
  id,
  from,
  to,
  text,
  alarm: null,
  ref: null,
  sent_at: '2026-12-01T00:00:00Z',
  read_at: null,
})

describe('chat', () => {
  it('names the conversation of a message from either side', () => {
    expect(convOf(msg(1, 'ann', 'bob'), 'bob')).toBe('ann')
    expect(convOf(msg(1, 'ann', 'bob'), 'ann')).toBe('bob')
    expect(convOf(msg(1, 'ann', 'park:alpha'), 'bob')).toBe('park:alpha')
  })

  it('merges messages in id order without duplicates (a push and the reply may both arrive)', () => {
    let th: Message[] = []
    th = mergeMessage(th, msg(2, 'ann', 'bob'))
    th = mergeMessage(th, msg(1, 'ann', 'bob'))
    th = mergeMessage(th, msg(2, 'ann', 'bob'))
    expect(th.map((m) => m.id)).toEqual([1, 2])
    expect(mergeMessage(th, msg(3, 'a', 'b'), 2).map((m) => m.id)).toEqual([2, 3])
  })

  it('applies receipts once', () => {
    const th = applyReceipt([msg(1, 'ann', 'bob'), msg(2, 'ann', 'bob')], [2], 'T1')
    expect(th.map((m) => m.read_at)).toEqual([null, 'T1'])
    expect(applyReceipt(th, [2], 'T2')[1].read_at).toBe('T1')
  })

  it('counts unread for closed conversations only and moves direct news to the top', () => {
    const rows: ConversationRow[] = [
      { with: 'carl', channel: null, unread: 0, last: null },
      { with: null, channel: 'park:alpha', unread: 1, last: null },
    ]
    let r = applyToRows(rows, msg(5, 'ann', 'bob'), 'bob', null)
    expect(r[0]).toMatchObject({ with: 'ann', unread: 1 })
    expect(unreadTotal(r)).toBe(2)
    r = applyToRows(r, msg(6, 'ann', 'bob'), 'bob', 'ann')
    expect(r[0].unread).toBe(1)
    r = applyToRows(r, msg(7, 'bob', 'park:alpha'), 'bob', null)
    expect(unreadTotal(r)).toBe(2)
    // Text is kept verbatim (rendered as text, never as HTML).
    r = applyToRows(r, msg(8, 'x', 'park:alpha', '<img src=x onerror=alert(1)>'), 'bob', null)
    expect(r.find((x) => x.channel === 'park:alpha')?.last?.text).toBe('<img src=x onerror=alert(1)>')
  })
})
