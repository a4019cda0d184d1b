// Downloads a file the server gives only with the session's Bearer token (a plain link cannot
// carry it): fetch, then save the body through a temporary object URL. Browser transport only.
import { toApiError } from './protocol'

/** Fetches `url` with the token and saves it as `filename`; rejects with the server's error. */
export async function downloadWithToken(url: string, token: string | null, filename: string): Promise<void> {
  const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} })
  if (!res.ok) throw toApiError(await res.json().catch(() => ({ code: 'internal', message: `HTTP ${res.status}` })))
  const href = URL.createObjectURL(await res.blob())
  const a = document.createElement('a')
  a.href = href
  a.download = filename
  a.click()
  URL.revokeObjectURL(href)
}
