// Who is logged in, the idle countdown, and the screen the UI shows. One instance per page.

import { reactive } from 'vue'
import type { LoginResult, Role, UserSummary } from './protocol'
import { toApiError } from './protocol'
import { applySnapshot, applyUpdate, createLiveState } from './store'
import { transport, type Credentials, type MeResult } from './transport'

/** Default idle timeouts per role (issue 3), used when the server does not say. */
export const DEFAULT_IDLE_S: Record<Role, number> = {
  viewer: 30 * 60,
  operator: 30 * 60,
  serviceman: 240 * 60,
  admin: 60 * 60,
  superuser: 120 * 60,
}

/** What the UI offers per role (the server decides; this only hides screens that would fail). */
export function mayManageUsers(role: Role | undefined): boolean {
  return role === 'admin' || role === 'superuser'
}

export type Route =
  | { name: 'login' }
  | { name: 'overview' }
  | { name: 'park'; plc: string }
  | { name: 'tag'; plc: string; tag: string }
  | { name: 'admin'; tab: 'users' | 'audit' }

export function parseHash(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map((p) => {
    try {
      return decodeURIComponent(p)
    } catch {
      return p
    }
  })
  switch (parts[0]) {
    case 'park':
      if (parts[1]) return { name: 'park', plc: parts[1] }
      break
    case 'tag':
      if (parts[1] && parts[2]) return { name: 'tag', plc: parts[1], tag: parts.slice(2).join('/') }
      break
    case 'admin':
      return { name: 'admin', tab: parts[1] === 'audit' ? 'audit' : 'users' }
  }
  return { name: 'overview' }
}

export function routeHash(r: Route): string {
  switch (r.name) {
    case 'park':
      return `#/park/${encodeURIComponent(r.plc)}`
    case 'tag':
      return `#/tag/${encodeURIComponent(r.plc)}/${r.tag.split('/').map(encodeURIComponent).join('/')}`
    case 'admin':
      return `#/admin/${r.tab}`
    case 'login':
      return '#/login'
    default:
      return '#/overview'
  }
}

export interface SessionState {
  token: string | null
  user: UserSummary | null
  idleTimeoutS: number
  lastActivity: number
  now: number
  /** Why the user is on the login screen (idle, revoked, logout); shown there once. */
  notice: string | null
  noticeParams: Record<string, string>
  route: Route
}

export const live = createLiveState()

export const session = reactive<SessionState>({
  token: null,
  user: null,
  idleTimeoutS: DEFAULT_IDLE_S.operator,
  lastActivity: Date.now(),
  now: Date.now(),
  notice: null,
  noticeParams: {},
  route: { name: 'login' },
})

export function navigate(r: Route): void {
  if (!session.token) r = { name: 'login' }
  session.route = r
  const h = routeHash(r)
  if (typeof location !== 'undefined' && location.hash !== h) history.replaceState(null, '', h)
}

/** Seconds until the idle logout. */
export function idleLeft(): number {
  return session.idleTimeoutS - Math.max(0, session.now - session.lastActivity) / 1000
}

let lastPing = 0

/** Any touch or key press: the person is still there. */
export function touch(): void {
  session.lastActivity = Date.now()
  // Keep the server's sliding idle timeout in step (at most once a minute).
  if (session.token && session.lastActivity - lastPing > 60000) {
    lastPing = session.lastActivity
    transport.request({ op: 'ping' }).catch(() => undefined)
  }
}

function startLive(token: string) {
  transport.startLive(token, {
    snapshot: (m) => applySnapshot(live, m),
    update: (m) => {
      applyUpdate(live, m)
      if (live.needsSnapshot) {
        live.needsSnapshot = false
        transport
          .request<typeof m & { plcs: never }>({ op: 'snapshot' })
          .then((s) => applySnapshot(live, s as never))
          .catch(() => undefined)
      }
    },
    // The server closes with 4001 both for revocation and for idle expiry; when the person has
    // been idle for (nearly) the whole timeout here too, it is the idle logout.
    ended: (_code, reason) => (idleLeft() < Math.max(2, session.idleTimeoutS * 0.1) ? endSession('idle') : endSession('revoked', { reason })),
  })
}

/**
 * The idle timeout of this session in seconds: `idle_timeout_s` when the server says it, else
 * derived from `me`'s `idle_expires_at` (just slid by that very call) minus the server's clock.
 */
export function idleFromMe(me: MeResult, serverNow: number): number | null {
  if (typeof me.idle_timeout_s === 'number' && me.idle_timeout_s > 0) return me.idle_timeout_s
  const at = Date.parse(me.user?.idle_expires_at ?? '')
  if (Number.isNaN(at)) return null
  // The HTTP Date header is truncated to whole seconds, so the difference is up to 1 s long.
  const s = Math.floor((at - serverNow) / 1000)
  return s > 0 ? s : null
}

async function learnIdleTimeout() {
  try {
    const { me, serverNow } = await transport.me()
    const s = idleFromMe(me, serverNow)
    if (s && session.token) session.idleTimeoutS = s
  } catch {
    /* keep the role default */
  }
}

function begin(r: LoginResult) {
  session.token = r.token
  session.user = r.user
  const role = r.user?.role ?? 'operator'
  session.idleTimeoutS = typeof r.idle_timeout_s === 'number' && r.idle_timeout_s > 0 ? r.idle_timeout_s : DEFAULT_IDLE_S[role] ?? DEFAULT_IDLE_S.operator
  session.lastActivity = session.now = Date.now()
  lastPing = Date.now()
  session.notice = null
  live.ready = false
  live.parks = []
  live.seq = 0
  try {
    sessionStorage.setItem('stator.session', JSON.stringify(r))
  } catch {
    /* no storage */
  }
  startLive(r.token)
  if (!(typeof r.idle_timeout_s === 'number' && r.idle_timeout_s > 0)) void learnIdleTimeout()
  navigate({ name: 'overview' })
}

export async function login(c: Credentials): Promise<void> {
  begin(await transport.login(c))
}

export async function setupFirstSuperuser(username: string, password: string, setupCode?: string): Promise<void> {
  begin(await transport.setup(username, password, setupCode))
}

/** Restores a browser session after a page reload, if the token still works. */
export async function resume(): Promise<boolean> {
  let saved: LoginResult | null = null
  try {
    saved = JSON.parse(sessionStorage.getItem('stator.session') || 'null')
  } catch {
    saved = null
  }
  if (!saved?.token || !transport.resume) return false
  try {
    await transport.resume(saved.token)
    const target = parseHash(location.hash)
    begin(saved)
    if (target.name !== 'login') navigate(target)
    return true
  } catch (e) {
    if (toApiError(e).code !== 'not_connected') sessionStorage.removeItem('stator.session')
    return false
  }
}

/** Leaves the session (logout button, idle, revoked) and returns to the login screen. */
export async function endSession(why: 'logout' | 'idle' | 'revoked', params: Record<string, string> = {}): Promise<void> {
  const had = session.token
  session.token = null
  session.user = null
  session.notice = `login.reason.${why}`
  session.noticeParams = params
  try {
    sessionStorage.removeItem('stator.session')
  } catch {
    /* no storage */
  }
  navigate({ name: 'login' })
  live.ready = false
  live.parks = []
  if (why === 'revoked') transport.stopLive()
  else if (had) await transport.logout().catch(() => undefined)
}

let ticker: ReturnType<typeof setInterval> | null = null

/** Starts the 1 s clock that drives the countdown and the idle logout. */
export function startClock(): void {
  if (ticker) return
  ticker = setInterval(() => {
    session.now = Date.now()
    if (session.token && idleLeft() <= 0) void endSession('idle')
  }, 250)
}
