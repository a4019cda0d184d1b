// Messages and presence for the whole UI: the conversation list with unread counts (the session
// bar's badge), the open thread, and what pushes change. Text stays text: screens render it with
// interpolation only (never v-html), so no HTML or markdown from a message is ever interpreted.

import { reactive } from 'vue'
import type {
  ConversationRow,
  ConversationsReply,
  Message,
  MessagePush,
  MessageSent,
  MessagesPage,
  PresencePush,
  PresenceReply,
  ReadReply,
  ReceiptPush,
  UserPresence,
} from './protocol'
import { onPush } from './pushes'

/** `onPush` for a typed push shape. */
export function onTyped<T>(type: string, fn: (msg: T) => void): () => void {
  return onPush(type, (p) => fn(p as unknown as T))
}
import { transport } from './transport'

/** A conversation as the UI names it: `park:<id>` or the peer's username. */
export type ConvKey = string

export const isChannel = (k: ConvKey): boolean => k.startsWith('park:')

/** The conversation a message belongs to, seen by `me`. */
export function convOf(m: Message, me: string): ConvKey {
  if (isChannel(m.to)) return m.to
  return m.from === me ? m.to : m.from
}

/** The key of a `conversations` row. */
export function rowKey(r: ConversationRow): ConvKey {
  return r.channel ?? r.with ?? ''
}

/** Inserts or replaces `m` in a thread kept oldest first, without duplicates; bounded to `max`. */
export function mergeMessage(thread: Message[], m: Message, max = 500): Message[] {
  const i = thread.findIndex((x) => x.id === m.id)
  if (i >= 0) {
    const copy = thread.slice()
    copy[i] = { ...m, read_at: m.read_at ?? thread[i].read_at }
    return copy
  }
  const out = [...thread, m].sort((a, b) => a.id - b.id)
  return out.length > max ? out.slice(out.length - max) : out
}

/** Sets `read_at` on the messages a receipt names. */
export function applyReceipt(thread: Message[], ids: number[], readAt: string): Message[] {
  const set = new Set(ids)
  return thread.map((m) => (set.has(m.id) && !m.read_at ? { ...m, read_at: readAt } : m))
}

/** Unread messages over every conversation (the badge). */
export function unreadTotal(rows: ConversationRow[]): number {
  return rows.reduce((n, r) => n + (r.unread || 0), 0)
}

/** Updates the row of `m`'s conversation (last message, unread unless it is open or mine). */
export function applyToRows(rows: ConversationRow[], m: Message, me: string, open: ConvKey | null): ConversationRow[] {
  const key = convOf(m, me)
  const mine = m.from === me
  const i = rows.findIndex((r) => rowKey(r) === key)
  const unreadInc = !mine && key !== open ? 1 : 0
  if (i < 0) {
    const row: ConversationRow = {
      with: isChannel(key) ? null : key,
      channel: isChannel(key) ? key : null,
      unread: unreadInc,
      last: m,
    }
    return [row, ...rows]
  }
  const copy = rows.slice()
  const r = copy[i]
  copy[i] = { ...r, last: !r.last || r.last.id <= m.id ? m : r.last, unread: r.unread + unreadInc }
  // Direct conversations with news move to the top.
  if (!isChannel(key) && i > 0) copy.unshift(...copy.splice(i, 1))
  return copy
}

export interface ChatState {
  me: string
  rows: ConversationRow[]
  canSend: boolean
  phrases: Record<string, string[]>
  open: ConvKey | null
  thread: Message[]
  online: UserPresence[]
  error: string | null
}

export const chat = reactive<ChatState>({
  me: '',
  rows: [],
  canSend: false,
  phrases: {},
  open: null,
  thread: [],
  online: [],
  error: null,
})

export function unread(): number {
  return unreadTotal(chat.rows)
}

/** Reloads the conversation list (after login, after a snapshot, on opening the screen). */
export async function refresh(me: string): Promise<void> {
  chat.me = me
  const r = await transport.request<ConversationsReply>({ op: 'conversations' })
  chat.rows = r.conversations
  chat.canSend = r.can_send
  chat.phrases = r.phrases
  try {
    chat.online = (await transport.request<PresenceReply>({ op: 'presence' })).users
  } catch {
    /* presence is a nicety */
  }
}

function convRequest(k: ConvKey): Record<string, string> {
  return isChannel(k) ? { channel: k } : { with: k }
}

/** Opens a conversation: its last 50 messages, then marks what was unread as read. */
export async function openConversation(k: ConvKey): Promise<void> {
  chat.open = k
  const page = await transport.request<MessagesPage>({ op: 'messages', ...convRequest(k), limit: 50 })
  if (chat.open !== k) return
  chat.thread = page.messages.slice().reverse()
  await markRead()
}

/** Read receipts for everything shown that was sent to me and is unread. */
export async function markRead(): Promise<void> {
  const ids = chat.thread.filter((m) => m.from !== chat.me && !m.read_at).map((m) => m.id)
  const row = chat.rows.find((r) => rowKey(r) === chat.open)
  if (row) row.unread = 0
  if (ids.length === 0) return
  try {
    const r = await transport.request<ReadReply>({ op: 'message_read', ids: ids.slice(-500) })
    const done = new Set(r.ids)
    chat.thread = chat.thread.map((m) => (done.has(m.id) ? { ...m, read_at: r.read_at } : m))
  } catch {
    /* channel messages from before one was granted have no receipt row: nothing to mark */
  }
}

/** Sends `text` to the open conversation (optionally about an alarm). */
export async function send(text: string, alarm?: string): Promise<Message> {
  if (!chat.open) throw new Error('no conversation open')
  const req: Record<string, unknown> = { op: 'message_send', to: chat.open, text }
  if (alarm) req.alarm = alarm
  const r = await transport.request<MessageSent>(req as { op: string })
  chat.thread = mergeMessage(chat.thread, r.message)
  chat.rows = applyToRows(chat.rows, r.message, chat.me, chat.open)
  return r.message
}

onTyped<MessagePush>('message', (p) => {
  const m = p.message
  chat.rows = applyToRows(chat.rows, m, chat.me, chat.open)
  if (chat.open && convOf(m, chat.me) === chat.open) {
    chat.thread = mergeMessage(chat.thread, m)
    if (m.from !== chat.me) void markRead()
  }
})

onTyped<ReceiptPush>('receipt', (p) => {
  chat.thread = applyReceipt(chat.thread, p.ids, p.read_at)
})

onTyped<PresencePush>('presence', (p) => {
  const rest = chat.online.filter((u) => u.username !== p.username)
  chat.online = p.online ? [...rest, { username: p.username, clients: p.clients }].sort((a, b) => a.username.localeCompare(b.username)) : rest
})
