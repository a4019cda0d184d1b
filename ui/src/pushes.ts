// Server-initiated messages (alarm transitions, chat messages, service banners…) arrive on the
// WebSocket, or as the Tauri event `push` on the panel, as JSON objects with a `type`. Screens
// subscribe by type here and never care which transport delivered them.

export interface PushMsg {
  type: string
  [field: string]: unknown
}

type Handler = (msg: PushMsg) => void

const handlers = new Map<string, Set<Handler>>()

/** Calls `fn` for every push of `type`; returns the function that unsubscribes. */
export function onPush<T extends PushMsg = PushMsg>(type: string, fn: (msg: T) => void): () => void {
  let set = handlers.get(type)
  if (!set) handlers.set(type, (set = new Set()))
  set.add(fn as Handler)
  return () => {
    set.delete(fn as Handler)
  }
}

/** Hands a push to its subscribers (the transports call this); returns whether anyone took it. */
export function deliverPush(msg: PushMsg): boolean {
  const set = handlers.get(msg.type)
  if (!set || set.size === 0) return false
  for (const fn of [...set]) {
    try {
      fn(msg)
    } catch (e) {
      console.error('push handler failed', msg.type, e)
    }
  }
  return true
}
