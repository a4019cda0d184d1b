// Kiosk mode (desktop `stator --kiosk`): the window is fullscreen and cannot be closed; the only
// way out is an admin or superuser proving their password through the `exit_kiosk` op. This
// module owns the "Exit kiosk" prompt state and the one call; the desktop core does the checks.

import { reactive } from 'vue'
import { t } from './i18n'
import { toApiError } from './protocol'
import { explainLoginError } from './errors'
import type { Health } from './protocol'
import type { Transport } from './transport'

export interface KioskState {
  /** The desktop core said `health.kiosk === true`. */
  enabled: boolean
  /** The credentials prompt is shown. */
  open: boolean
  busy: boolean
  /** Why the last attempt was refused, in the UI language. */
  error: string | null
}

export const kiosk = reactive<KioskState>({ enabled: false, open: false, busy: false, error: null })

type Listen = (event: string, handler: () => void) => Promise<unknown>

/**
 * Asks the core whether this window is a kiosk (Tauri only; a browser never is) and opens the
 * prompt whenever the core reports a close attempt (`kiosk-exit-requested`).
 */
export async function initKiosk(tr: Pick<Transport, 'kind'> & { health(): Promise<Pick<Health, 'kiosk'>> }, listen?: Listen): Promise<void> {
  if (tr.kind !== 'tauri') return
  try {
    const h = await tr.health()
    kiosk.enabled = h.kiosk === true
  } catch {
    kiosk.enabled = false
  }
  if (!kiosk.enabled) return
  const l = listen ?? (await import('@tauri-apps/api/event')).listen
  await l('kiosk-exit-requested', () => openKioskExit())
}

/** Shows the credentials prompt (button or close attempt). */
export function openKioskExit(): void {
  if (!kiosk.enabled) return
  kiosk.open = true
  kiosk.error = null
}

/** Hides the prompt. */
export function closeKioskExit(): void {
  kiosk.open = false
  kiosk.busy = false
  kiosk.error = null
}

/** The refusal reason shown under the prompt. */
export function explainKioskError(e: unknown): string {
  const err = toApiError(e)
  return err.code === 'forbidden' ? t('kiosk.forbidden', { message: err.message }) : explainLoginError(e)
}

/**
 * Sends `{op:'exit_kiosk', username, password}`. On success the app ends (resolves true);
 * on refusal the reason lands in `kiosk.error` (resolves false).
 */
export async function exitKiosk(tr: Pick<Transport, 'request'>, username: string, password: string): Promise<boolean> {
  if (kiosk.busy) return false
  kiosk.busy = true
  kiosk.error = null
  try {
    await tr.request({ op: 'exit_kiosk', username: username.trim(), password })
    return true
  } catch (e) {
    kiosk.error = explainKioskError(e)
    return false
  } finally {
    kiosk.busy = false
  }
}
