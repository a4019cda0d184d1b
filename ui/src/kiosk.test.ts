import { beforeEach, describe, expect, it } from 'vitest'
import { closeKioskExit, exitKiosk, explainKioskError, initKiosk, kiosk, openKioskExit } from './kiosk'
import { ApiError, type Request } from './protocol'
import { setLang } from './i18n'

beforeEach(() => {
  Object.assign(kiosk, { enabled: false, open: false, busy: false, error: null })
  setLang('en')
})

describe('kiosk', () => {
  it('is enabled only by a Tauri health reply with kiosk: true, and listens for close attempts', async () => {
    const events: string[] = []
    let fire: (() => void) | null = null
    const listen = async (ev: string, h: () => void) => {
      events.push(ev)
      fire = h
    }
    await initKiosk({ kind: 'browser', health: async () => ({ status: 'ok', kiosk: true }) }, listen)
    expect(kiosk.enabled).toBe(false)
    await initKiosk({ kind: 'tauri', health: async () => ({ status: 'ok', kiosk: false }) }, listen)
    expect(kiosk.enabled).toBe(false)
    expect(events).toEqual([])
    await initKiosk({ kind: 'tauri', health: async () => ({ status: 'ok', kiosk: true }) }, listen)
    expect(kiosk.enabled).toBe(true)
    expect(events).toEqual(['kiosk-exit-requested'])
    expect(kiosk.open).toBe(false)
    fire!()
    expect(kiosk.open).toBe(true)
    closeKioskExit()
    expect(kiosk.open).toBe(false)
  })

  it('does not open the prompt outside kiosk mode', () => {
    openKioskExit()
    expect(kiosk.open).toBe(false)
  })

  it("sends {op:'exit_kiosk', username, password} and resolves true on success", async () => {
    const sent: Request[] = []
    const ok = await exitKiosk({ request: async <T,>(r: Request) => (sent.push(r), { exiting: true } as T) }, ' admin ', 'pw 1')
    expect(ok).toBe(true)
    expect(sent).toEqual([{ op: 'exit_kiosk', username: 'admin', password: 'pw 1' }])
    expect(kiosk.error).toBeNull()
    expect(kiosk.busy).toBe(false)
  })

  it('shows the refusal reason: forbidden operator, wrong password', async () => {
    const refuse = (code: string, message: string) => ({
      request: async <T,>(): Promise<T> => {
        throw { code, message }
      },
    })
    expect(await exitKiosk(refuse('forbidden', 'only an admin or superuser may leave kiosk mode'), 'op', 'x')).toBe(false)
    expect(kiosk.error).toBe('Refused: only an admin or superuser may leave kiosk mode')
    expect(await exitKiosk(refuse('invalid_credentials', 'invalid credentials'), 'admin', 'bad')).toBe(false)
    expect(kiosk.error).toBe('Wrong user name or password.')
    expect(kiosk.busy).toBe(false)
  })

  it('explains other codes in the chosen language', () => {
    setLang('de')
    expect(explainKioskError(new ApiError('forbidden', 'nein'))).toBe('Abgelehnt: nein')
    expect(explainKioskError(new ApiError('locked', 'locked', 30))).toContain('30')
    setLang('pl')
    expect(explainKioskError(new ApiError('invalid', 'not in kiosk mode'))).toContain('not in kiosk mode')
    setLang('en')
  })
})
