import { describe, expect, it } from 'vitest'
import { LANGS, messages, placeholders, t } from './i18n'

describe('i18n', () => {
  const keys = Object.keys(messages.en).sort()

  it('has every key in every language, non-empty', () => {
    for (const l of LANGS) {
      expect(Object.keys(messages[l]).sort(), l).toEqual(keys)
      for (const k of keys) expect((messages[l] as Record<string, string>)[k].trim().length, `${l}:${k}`).toBeGreaterThan(0)
    }
  })

  it('uses the same placeholders in every language', () => {
    for (const l of LANGS)
      for (const k of keys)
        expect(placeholders((messages[l] as Record<string, string>)[k]), `${l}:${k}`).toEqual(placeholders((messages.en as Record<string, string>)[k]))
  })

  it('fills placeholders', () => {
    expect(t('write.refused', { code: 'forbidden', message: 'no' }, 'en')).toBe('Refused (forbidden): no')
    expect(t('error.locked', { s: 42 }, 'de')).toContain('42')
    expect(t('alarm.count', { n: 3 }, 'pl')).toContain('3')
  })

  it('translates (German and Polish differ from English where words differ)', () => {
    expect(t('login.submit', {}, 'de')).toBe('Anmelden')
    expect(t('login.submit', {}, 'pl')).toBe('Zaloguj')
  })

  it('every key used in the source exists', async () => {
    const fs = await import('node:fs')
    const path = await import('node:path')
    const used = new Set<string>()
    const walk = (d: string) => {
      for (const f of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, f.name)
        if (f.isDirectory()) walk(p)
        else if (/\.(vue|ts)$/.test(f.name) && !f.name.endsWith('.test.ts'))
          for (const m of fs.readFileSync(p, 'utf8').matchAll(/\bt\('([a-z_0-9]+\.[a-zA-Z_0-9.]+)'/g)) used.add(m[1])
      }
    }
    walk(path.resolve(__dirname))
    expect(used.size).toBeGreaterThan(50)
    for (const k of used) expect(keys, k).toContain(k)
  })
})
