// Browser-side decode cost of one live update, default JSON vs the compact encoding
// (docs/performance.md, "Remote"). Input: the files `STATOR_BENCH_DUMP=<dir>` makes the remote
// bench write (snapshot.json, update-json.json, update-compact.json).
// Run: node ui/bench/decode.mjs <dir>
// Each iteration parses the frame and applies it to a tag table the way ui/src/store.ts does
// (JSON: look the tag up by name; compact: by its snapshot index).
import { readFileSync } from 'node:fs'

const dir = process.argv[2] ?? '/tmp/wire-dump'
const snap = JSON.parse(readFileSync(`${dir}/snapshot.json`, 'utf8'))
const json = readFileSync(`${dir}/update-json.json`, 'utf8')
const compact = readFileSync(`${dir}/update-compact.json`, 'utf8')

const tags = snap.plcs[0].nodes.map((n) => ({ ...n }))
const byName = new Map(tags.map((t, i) => [t.name, i]))

function applyJson(text) {
  const msg = JSON.parse(text)
  for (const d of msg.plcs) {
    for (const c of d.changes) {
      const t = tags[byName.get(c.name)]
      t.value = c.value
      t.quality = c.quality
      t.reason = c.reason ?? null
      t.ts = c.ts
    }
  }
}

function applyCompact(text) {
  const msg = JSON.parse(text)
  for (const d of msg.plcs) {
    for (const c of d.c ?? []) {
      const t = tags[c[0]]
      t.value = c[1]
      t.ts = c[2]
      t.quality = c.length > 3 ? c[3] : 'good'
      t.reason = c.length > 4 ? c[4] : null
    }
  }
}

function time(name, f, text, n = 300) {
  for (let i = 0; i < 30; i++) f(text) // warm-up (JIT)
  const runs = []
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint()
    f(text)
    runs.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  runs.sort((a, b) => a - b)
  const p = (q) => runs[Math.round((runs.length - 1) * q)].toFixed(2)
  const changes = JSON.parse(text).plcs.reduce((s, d) => s + (d.changes ?? d.c ?? []).length, 0)
  console.log(
    `${name.padEnd(8)} ${changes} changes, ${text.length} bytes (${(text.length / changes).toFixed(1)} bytes/tag): ` +
      `parse+apply p50 ${p(0.5)} ms, p90 ${p(0.9)} ms`,
  )
}

console.log(`node ${process.version}`)
time('json', applyJson, json)
time('compact', applyCompact, compact)
