// Text/PIN entry as a modal with the on-screen keyboard, for screens that need a word now and
// then (filter, admin forms). Resolves to the text, or null when cancelled.

import { reactive } from 'vue'

export interface PromptState {
  open: boolean
  label: string
  value: string
  secret: boolean
  mode: 'text' | 'pin'
  resolve: ((v: string | null) => void) | null
}

export const prompt = reactive<PromptState>({ open: false, label: '', value: '', secret: false, mode: 'text', resolve: null })

export function ask(label: string, initial = '', opts: { secret?: boolean; mode?: 'text' | 'pin' } = {}): Promise<string | null> {
  prompt.resolve?.(null)
  return new Promise((resolve) => {
    Object.assign(prompt, { open: true, label, value: initial, secret: !!opts.secret, mode: opts.mode ?? 'text', resolve })
  })
}

export function closePrompt(ok: boolean): void {
  const r = prompt.resolve
  const v = prompt.value
  Object.assign(prompt, { open: false, resolve: null, value: '' })
  r?.(ok ? v : null)
}
