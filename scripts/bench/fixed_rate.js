#!/usr/bin/env node
// Fixed-rate ("open-loop") mixed traffic for the HealthTrack benchmark
// (scripts/bench.py runs it; docs/performance.md explains the method).
//
//   node scripts/bench/fixed_rate.js CONFIG.json > result.json
//
// Request i is due at start + i / rate, whatever happened to the requests before it:
// a slow answer never delays the next request (that would be coordinated omission, the
// flaw of closed-loop tools such as wrk). Latency is measured from the moment a request
// was DUE to the moment its answer was complete, so time a request spent waiting for a
// free connection, or behind a late timer, counts against the server, as in wrk2.
// Connections: keep-alive, opened as needed up to max_connections; a request that finds
// them all busy waits for one (and that wait counts in its latency).
//
// The sequence of routes and people is drawn from a seeded generator before the run, so
// two runs with the same config send the same requests in the same order.
//
// CONFIG: {url, rate, duration_s, warmup_s, timeout_s, max_connections, seed, password,
//          base_epoch, mix: {route: weight, ...},
//          people: [{user_id, username, token, metric_ids: [...]}, ...]}
// Output (stdout, one JSON object): overall and per-route counts, statuses, errors and
// latency percentiles (ms) of the requests due after the warm-up. Requests abandoned after
// timeout_s count as errors and stay in the latency percentiles at the time they were
// given up; other socket errors count as errors only.

'use strict'

const fs = require('fs')
const http = require('http')
const { performance } = require('perf_hooks')

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const target = new URL(config.url)
const rate = Number(config.rate)
const warmupCount = Math.round(rate * Number(config.warmup_s || 0))
const total = warmupCount + Math.round(rate * Number(config.duration_s))
const timeoutMs = Number(config.timeout_s || 10) * 1000
const people = config.people
if (!(rate > 0) || !(total > warmupCount) || !people.length) {
  throw new Error('config needs rate > 0, duration_s > 0 and at least one person')
}

// Idle keep-alive connections are closed after 3 s, before gunicorn's 5 s keepalive
// would close them under a request on its way (a reset that would be the harness's fault).
const agent = new http.Agent({
  keepAlive: true,
  maxSockets: config.max_connections || 64,
  maxFreeSockets: config.max_connections || 64,
  timeout: 3000,
  scheduling: 'lifo'
})

// mulberry32: small, fast, seeded.
function generator (seed) {
  let state = seed >>> 0
  return function () {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = generator(config.seed || 1)
const pick = (list) => list[Math.floor(random() * list.length)]

const baseEpochMs = Number(config.base_epoch || Date.now() / 1000) * 1000
const MEALS = ['breakfast', 'lunch', 'dinner', 'snack']

// Each route: (person, i) -> {method, path, body?, token?}. i is the request's index,
// which makes every written body different (recorded_at / logged_at one second apart).
const ROUTES = {
  recommendations: (p) => ({ method: 'GET', path: `/api/v1/recommendations/${p.user_id}` }),
  metric_summary: () => ({ method: 'GET', path: '/api/v1/health-metrics/summary' }),
  metric_list: (p) => ({ method: 'GET', path: `/api/v1/health-metrics/user/${p.user_id}?limit=50` }),
  metric_get: (p) => ({ method: 'GET', path: `/api/v1/health-metrics/${pick(p.metric_ids)}` }),
  goal_list: (p) => ({ method: 'GET', path: `/api/v1/health-goals/user/${p.user_id}` }),
  nutrition_list: (p) => ({ method: 'GET', path: `/api/v1/nutrition-logs/user/${p.user_id}?limit=50` }),
  metric_create: (p, i) => ({
    method: 'POST',
    path: '/api/v1/health-metrics',
    body: {
      metric_type: 'heart_rate',
      value: 50 + (i * 7) % 90,
      unit: 'bpm',
      recorded_at: new Date(baseEpochMs - i * 1000).toISOString()
    }
  }),
  nutrition_create: (p, i) => ({
    method: 'POST',
    path: '/api/v1/nutrition-logs',
    body: {
      meal_type: MEALS[i % MEALS.length],
      description: 'bench meal',
      calories: 200 + (i * 13) % 700,
      protein_g: 5 + (i % 40),
      carbs_g: 20 + (i % 80),
      fat_g: 3 + (i % 30),
      logged_at: new Date(baseEpochMs - i * 1000).toISOString()
    }
  }),
  login: (p) => ({
    method: 'POST',
    path: '/api/v1/auth/token',
    body: { username: p.username, password: config.password },
    anonymous: true
  })
}

const mix = Object.entries(config.mix).filter(([, weight]) => weight > 0)
for (const [name] of mix) {
  if (!ROUTES[name]) throw new Error(`unknown route in mix: ${name}`)
}
const weightTotal = mix.reduce((sum, [, weight]) => sum + weight, 0)
function drawRoute () {
  let ticket = random() * weightTotal
  for (const [name, weight] of mix) {
    ticket -= weight
    if (ticket < 0) return name
  }
  return mix[mix.length - 1][0]
}

// The whole plan first: the hot loop only sends.
const plan = new Array(total)
for (let i = 0; i < total; i++) {
  const name = drawRoute()
  const person = pick(people)
  const spec = ROUTES[name](person, i)
  const headers = { Accept: 'application/json' }
  if (!spec.anonymous) headers.Authorization = `Bearer ${person.token}`
  let body = null
  if (spec.body) {
    body = JSON.stringify(spec.body)
    headers['Content-Type'] = 'application/json'
    headers['Content-Length'] = Buffer.byteLength(body)
  }
  plan[i] = { name, method: spec.method, path: spec.path, headers, body }
}

const intervalMs = 1000 / rate
const dueAt = new Float64Array(total)
const sentAt = new Float64Array(total)
const doneAt = new Float64Array(total)
const status = new Int32Array(total)
const errorCode = new Array(total).fill(null)
let sent = 0
let finished = 0
let connections = 0
let start = 0

function finish (i, code, error) {
  if (doneAt[i] !== 0) return
  doneAt[i] = performance.now()
  inFlight.delete(i)
  status[i] = code
  errorCode[i] = error
  finished++
  if (finished === total) report()
}

function fire (i) {
  const item = plan[i]
  sentAt[i] = performance.now()
  const request = http.request({
    agent,
    host: target.hostname,
    port: target.port,
    method: item.method,
    path: item.path,
    headers: item.headers
  }, (response) => {
    response.on('data', () => {})
    response.on('end', () => finish(i, response.statusCode, null))
    response.on('error', (error) => finish(i, 0, error.code || error.message))
  })
  request.on('socket', (socket) => {
    if (!socket.benchCounted) {
      socket.benchCounted = true
      connections++
    }
  })
  request.on('error', (error) => finish(i, 0, error.code || error.message))
  inFlight.set(i, request)
  request.end(item.body)
}

// A request still unanswered timeout_s after it was due is abandoned and counted as an
// error (TIMEOUT), waiting for a connection included: an overloaded server cannot stretch
// the run beyond the last due time + timeout_s.
const inFlight = new Map()
const reaper = setInterval(() => {
  const limit = performance.now() - timeoutMs
  for (const [i, request] of inFlight) {
    if (dueAt[i] < limit) request.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' }))
  }
}, 100)

function pump () {
  const now = performance.now()
  while (sent < total && start + sent * intervalMs <= now) {
    dueAt[sent] = start + sent * intervalMs
    fire(sent++)
  }
  if (sent < total) {
    setTimeout(pump, Math.max(0, start + sent * intervalMs - performance.now()))
  }
}

function percentile (sorted, p) {
  if (!sorted.length) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

function summarise (indexes) {
  const latency = []
  const lag = []
  const statuses = {}
  const socketErrors = {}
  let non2xx = 0
  for (const i of indexes) {
    lag.push(sentAt[i] - dueAt[i])
    if (errorCode[i] !== null) {
      socketErrors[errorCode[i]] = (socketErrors[errorCode[i]] || 0) + 1
      // An abandoned request waited at least timeout_s: it stays in the distribution (at
      // the time it was given up), so an overloaded server cannot show a flattering p99.
      if (errorCode[i] === 'TIMEOUT') latency.push(doneAt[i] - dueAt[i])
      continue
    }
    statuses[status[i]] = (statuses[status[i]] || 0) + 1
    if (status[i] < 200 || status[i] > 299) non2xx++
    latency.push(doneAt[i] - dueAt[i])
  }
  latency.sort((a, b) => a - b)
  lag.sort((a, b) => a - b)
  const round = (value) => (value === null ? null : Math.round(value * 100) / 100)
  const socketErrorCount = Object.values(socketErrors).reduce((a, b) => a + b, 0)
  return {
    requests: indexes.length,
    statuses,
    non_2xx: non2xx,
    socket_errors: socketErrors,
    errors: non2xx + socketErrorCount,
    answered_2xx: Object.entries(statuses).reduce((sum, [code, n]) => sum + (code[0] === '2' ? n : 0), 0),
    latency_ms: {
      p50: round(percentile(latency, 50)),
      p90: round(percentile(latency, 90)),
      p99: round(percentile(latency, 99)),
      p999: round(percentile(latency, 99.9)),
      max: round(latency.length ? latency[latency.length - 1] : null),
      mean: round(latency.length ? latency.reduce((a, b) => a + b, 0) / latency.length : null)
    },
    send_lag_ms: { p99: round(percentile(lag, 99)), max: round(lag.length ? lag[lag.length - 1] : null) }
  }
}

function report () {
  const measured = []
  for (let i = warmupCount; i < total; i++) measured.push(i)
  const byRoute = {}
  for (const i of measured) (byRoute[plan[i].name] = byRoute[plan[i].name] || []).push(i)
  const firstDue = dueAt[warmupCount]
  const lastDone = Math.max(...measured.map((i) => doneAt[i]))
  const sendSpan = (sentAt[total - 1] - sentAt[warmupCount]) / 1000
  const result = {
    tool: 'scripts/bench/fixed_rate.js',
    node: process.version,
    rate,
    duration_s: Number(config.duration_s),
    warmup_s: Number(config.warmup_s || 0),
    timeout_s: timeoutMs / 1000,
    connections_opened: connections,
    max_connections: config.max_connections || 64,
    sent_rate: sendSpan > 0 ? Math.round(((measured.length - 1) / sendSpan) * 100) / 100 : null,
    completed_rate: Math.round((measured.length / ((lastDone - firstDue) / 1000)) * 100) / 100,
    overall: summarise(measured),
    routes: Object.fromEntries(Object.entries(byRoute).sort().map(([name, list]) => [name, summarise(list)]))
  }
  clearInterval(reaper)
  agent.destroy()
  process.stdout.write(JSON.stringify(result) + '\n')
}

start = performance.now() + 50
setTimeout(pump, 50)
