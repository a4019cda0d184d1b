// What a refused login (password, PIN, badge, first superuser, kiosk exit) means, in the chosen
// language: one place, so every login prompt explains a refusal the same way.

import { t } from './i18n'
import { toApiError } from './protocol'

/** The reason shown under a login prompt for a refused attempt. */
export function explainLoginError(e: unknown): string {
  const err = toApiError(e)
  const s = err.retryAfterS ?? 0
  switch (err.code) {
    case 'invalid_credentials':
      return t('error.invalid_credentials')
    case 'locked':
      return t('error.locked', { s })
    case 'rate_limited':
      return t('error.rate_limited', { s })
    case 'not_connected':
      return t('error.not_connected')
    default:
      return t('error.generic', { code: err.code, message: err.message })
  }
}
