// Who is logged in, the idle countdown, and the screen the UI shows. One instance per page.

import { applyServiceList } from './service'
import type { ServiceBanner } from './protocol'
import { reactive } from 'vue'
import type { LoginResult, Permission, Role, RoleInfo, UserSummary } from './protocol'
import { toApiError } from './protocol'
import { refresh as refreshChat } from './chat'
import { applySnapshot, applyUpdate, createLiveState } from './store'
import { listenAlarms, setAlarms } from './alarms'
import { transport, type Credentials, type MeResult } from './transport'

/**
 * THE role table, as the server's `health` sends it (roles, their permissions and idle timeouts):
 * the UI keeps no copy of its own. Empty until `loadRoles` answered.
 */
export const roleTable = reactive<{ roles: RoleInfo[] }>({ roles: [] })

/** Fetches the role table (once it is known, again only when asked). */
export async function loadRoles(): Promise<void> {
  try {
    roleTable.roles = (await transport.health()).roles ?? []
  } catch {
    /* keep what is known; screens that need a permission stay hidden */
  }
}

/** Whether `role` has `perm` in the server's table (the server decides; this only hides screens that would fail). */
export function roleMay(role: Role | undefined, perm: Permission): boolean {
  return !!role && !!roleTable.roles.find((r) => r.role === role)?.permissions.includes(perm)
}

/** Whether the UI offers user administration and the audit trail to `role`. */
export function mayManageUsers(role: Role | undefined): boolean {
  return roleMay(role, 'manage_users')
}

/** The configured idle timeout of `role`, when the role table is known. */
function idleOf(role: Role | undefined): number | null {
  return roleTable.roles.find((r) => r.role === role)?.idle_timeout_s ?? null
}

export type AdminTab = 'users' | 'audit' | 'tokens' | 'config'
const ADMIN_TABS: AdminTab[] = ['users', 'audit', 'tokens', 'config']

export type Route =
  | { name: 'login' }
  | { name: 'overview' }
  | { name: 'park'; plc: string }
  | { name: 'tag'; plc: string; tag: string }
  | { name: 'admin'; tab: AdminTab }
  | { name: 'alarms' }
  | { name: 'alarm_log' }
  | { name: 'trend'; plc: string }
  | { name: 'messages'; alarm?: string }
  | { name: 'logbook' }
  | { name: 'service' }
  | { name: 'calibration'; records?: true }
  | { name: 'diagnostics' }

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
      return { name: 'admin', tab: ADMIN_TABS.find((x) => x === parts[1]) ?? 'users' }
    case 'alarms':
      return parts[1] === 'log' ? { name: 'alarm_log' } : { name: 'alarms' }
    case 'trend':
      if (parts[1]) return { name: 'trend', plc: parts[1] }
      break
    case 'messages':
      return parts[1] === 'alarm' && parts[2] ? { name: 'messages', alarm: parts.slice(2).join('/') } : { name: 'messages' }
    case 'logbook':
      return { name: 'logbook' }
    case 'service':
      return { name: 'service' }
    case 'calibration':
      return parts[1] === 'records' ? { name: 'calibration', records: true } : { name: 'calibration' }
    case 'diagnostics':
      return { name: 'diagnostics' }
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
    case 'alarms':
      return '#/alarms'
    case 'alarm_log':
      return '#/alarms/log'
    case 'trend':
      return `#/trend/${encodeURIComponent(r.plc)}`
    case 'messages':
      return r.alarm ? `#/messages/alarm/${r.alarm.split('/').map(encodeURIComponent).join('/')}` : '#/messages'
    case 'logbook':
      return '#/logbook'
    case 'service':
      return '#/service'
    case 'calibration':
      return r.records ? '#/calibration/records' : '#/calibration'
    case 'diagnostics':
      return '#/diagnostics'
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
  idleTimeoutS: 30 * 60,
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
  listenAlarms()
  transport.startLive(token, {
    snapshot: (m) => {
      applySnapshot(live, m)
      setAlarms(m.alarms)
      applyServiceList(m.service)
      // A snapshot also follows a lag (missed pushes) or a grant change: messages are not in it,
      // so the conversation list (and the unread badge) is read again.
      if (session.user) refreshChat(session.user.username).catch(() => undefined)
    },
    update: (m) => {
      applyUpdate(live, m)
      if (live.needsSnapshot) {
        live.needsSnapshot = false
        transport
          .request<typeof m & { plcs: never }>({ op: 'snapshot' })
          .then((s) => {
            applySnapshot(live, s as never)
            setAlarms((s as { alarms?: never }).alarms)
            applyServiceList((s as { service?: ServiceBanner[] }).service)
          })
          .catch(() => undefined)
      }
    },
    // The server closes with 4001 both for revocation and for idle expiry; when the person has
    // been idle for (nearly) the whole timeout here too, it is the idle logout.
    ended: (_code, reason) => (idleLeft() < Math.max(2, session.idleTimeoutS * 0.1) ? endSession('idle') : endSession('revoked', { reason })),
  })
}

/**
 * The idle timeout of this session in seconds, derived from `me`'s `idle_expires_at` (just slid
 * by that very call) minus the server's clock.
 */
export function idleFromMe(me: MeResult, serverNow: number): number | null {
  const at = Date.parse(me.user.idle_expires_at)
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
  session.idleTimeoutS = idleOf(r.user?.role) ?? session.idleTimeoutS
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
  // The role table gives the configured timeout; `me` confirms it from the live session.
  void loadRoles().then(() => {
    const s = idleOf(r.user?.role)
    if (s && session.token === r.token) session.idleTimeoutS = s
    else void learnIdleTimeout()
  })
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
  setAlarms([])
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
