// Helpers shared by the end-to-end suites (browser and desktop): finding the stator binary,
// free loopback ports, and bounded polling (never sleeps as synchronisation).

import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The stator binary: $STATOR_BIN, else the cargo target dirs. */
export function findBinary() {
  const candidates = [
    process.env.STATOR_BIN,
    process.env.CARGO_TARGET_DIR && path.join(process.env.CARGO_TARGET_DIR, 'debug', 'stator'),
    process.env.CARGO_TARGET_DIR && path.join(process.env.CARGO_TARGET_DIR, 'release', 'stator'),
    path.join(ROOT, 'target', 'debug', 'stator'),
    path.join(ROOT, 'target', 'release', 'stator'),
  ].filter(Boolean)
  const bin = candidates.find((p) => fs.existsSync(p))
  if (!bin) throw new Error(`no stator binary: set STATOR_BIN (tried ${candidates.join(', ')})`)
  return bin
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
export function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** Polls `fn` until it returns a truthy value; fails after `ms` with `what`. */
export async function waitFor(what, fn, ms = 15000, every = 200) {
  const end = Date.now() + ms
  let last
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      last = e
    }
    await new Promise((r) => setTimeout(r, every))
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`)
}
