#!/usr/bin/env node
/**
 * PostgreSQL wire-protocol server backed by PGlite (PostgreSQL 17 compiled to
 * WebAssembly) with the TimescaleDB extension, for test suites that need a real
 * TCP PostgreSQL endpoint without installing PostgreSQL.
 *
 *   node scripts/pglite-server.mjs --port PORT [--host 127.0.0.1]
 *        [--data-dir DIR] [--max-instances 4] [--wait-timeout 30]
 *        [--prewarm 1] [--verbose]
 *
 * Once listening it prints exactly one line, "READY <port>", on stdout.
 *
 * Design notes
 * - Every database name in a StartupMessage gets its own PGlite instance,
 *   created on first use (in memory, or under DATA_DIR/<name> with --data-dir).
 *   At most --max-instances are kept; the least recently used instance without
 *   connected clients is closed to make room.
 * - A PGlite instance is a single backend session, so all clients of one
 *   database share it, serialised at transaction boundaries ("transaction
 *   pooling"): a client owns the session from its first processed message until
 *   PostgreSQL reports ReadyForQuery with status 'I'. Other clients queue, FIFO.
 *   Session state (SET, temp tables, prepared statements) is therefore shared
 *   while several clients are connected; it is reset when the last one leaves.
 * - PGlite is fed exactly one protocol message per execProtocolRaw() call:
 *   handing it raw TCP chunks (partial or many messages at once) aborts the
 *   WebAssembly module or loses messages.
 * - COPY FROM STDIN cannot be streamed into PGlite: the backend must find the
 *   whole copy stream in the same call. The server therefore answers
 *   CopyInResponse itself, buffers the client's CopyData, and hands PGlite the
 *   COPY command, all data and CopyDone in one call.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'

// ---------------------------------------------------------------------------
// Configuration

const USAGE =
  'usage: node scripts/pglite-server.mjs --port PORT [--host HOST] [--data-dir DIR]\n' +
  '         [--max-instances N] [--wait-timeout SECONDS] [--prewarm N] [--verbose]'

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'data-dir': { type: 'string' },
      'max-instances': { type: 'string', default: '4' },
      // How long a client may wait for another client's transaction on the
      // same database before its statement fails (0 = forever). A test that
      // holds a transaction open on one connection while blocking on another
      // would otherwise hang forever, as the session is shared.
      'wait-timeout': { type: 'string', default: '30' },
      // Number of spare in-memory instances created ahead of time, so that a
      // connection to a new database name does not wait for initdb.
      prewarm: { type: 'string', default: '1' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) {
    process.stdout.write(USAGE + '\n')
    process.exit(0)
  }
  const int = (name, min) => {
    const v = Number(values[name])
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}`)
    return v
  }
  if (values.port === undefined) throw new Error('--port is required')
  const port = int('port', 0)
  if (port > 65535) throw new Error('--port must be <= 65535')
  const waitTimeout = Number(values['wait-timeout'])
  if (!(waitTimeout >= 0)) throw new Error('--wait-timeout must be a number >= 0')
  return {
    port,
    host: values.host,
    dataDir: values['data-dir'] ? path.resolve(values['data-dir']) : null,
    maxInstances: int('max-instances', 1),
    waitTimeoutMs: waitTimeout * 1000,
    prewarm: values['data-dir'] ? 0 : int('prewarm', 0),
    verbose: values.verbose,
  }
}

let verbose = false
const log = (...args) => console.error(`[pglite-server ${new Date().toISOString()}]`, ...args)
const debug = (...args) => verbose && log(...args)

// ---------------------------------------------------------------------------
// Protocol helpers

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102
const PROTOCOL_3 = 3

// A single message larger than this is refused with an error. PGlite handles
// a 300 MB statement; around 500 MB it answers "out of memory" (its address
// space is 32-bit), so larger messages would only cost time and memory here.
const MAX_MESSAGE_BYTES = 512 * 1024 * 1024
// Limit on the buffered data of one COPY FROM STDIN.
const MAX_COPY_BYTES = 1024 * 1024 * 1024

class ProtocolError extends Error {
  constructor(message, code = '08P01') {
    super(message)
    this.code = code
  }
}

function message(type, body = Buffer.alloc(0)) {
  const out = Buffer.allocUnsafe(5 + body.length)
  out[0] = type.charCodeAt(0)
  out.writeInt32BE(4 + body.length, 1)
  body.copy(out, 5)
  return out
}

const cstr = (s) => Buffer.from(s + '\0', 'utf8')

function int32(n) {
  const b = Buffer.allocUnsafe(4)
  b.writeInt32BE(n)
  return b
}

const queryMessage = (sql) => message('Q', cstr(sql))
const SYNC = message('S')
const COPY_DONE = message('c')
const readyForQuery = (status) => message('Z', Buffer.from(status))
const copyFail = (text) => message('f', cstr(text))

function errorResponse({ severity = 'ERROR', code, text, detail, hint }) {
  const fields = [['S', severity], ['V', severity], ['C', code], ['M', text]]
  if (detail) fields.push(['D', detail])
  if (hint) fields.push(['H', hint])
  const parts = fields.map(([k, v]) => Buffer.concat([Buffer.from(k), cstr(v)]))
  parts.push(Buffer.from([0]))
  return message('E', Buffer.concat(parts))
}

function copyInResponse(binary, ncols) {
  const body = Buffer.alloc(3 + 2 * ncols)
  body[0] = binary ? 1 : 0
  body.writeInt16BE(ncols, 1)
  for (let i = 0; i < ncols; i++) body.writeInt16BE(binary ? 1 : 0, 3 + 2 * i)
  return message('G', body)
}

/** Reads a NUL-terminated string at `offset`; returns [string, nextOffset]. */
function readCString(buf, offset) {
  const end = buf.indexOf(0, offset)
  if (end < 0) throw new ProtocolError('unterminated string in message')
  return [buf.toString('utf8', offset, end), end + 1]
}

/** The message m with the string `value` at body offset `offset` replaced. */
function replaceCString(m, offset, value, replacement) {
  const end = offset + Buffer.byteLength(value) + 1
  const body = Buffer.concat([m.body.subarray(0, offset), cstr(replacement), m.body.subarray(end)])
  return { type: m.type, body, raw: message(m.type, body) }
}

/** Calls fn(type, start, end) for every backend message in buf. */
function forEachMessage(buf, fn) {
  let i = 0
  while (i + 5 <= buf.length) {
    const len = buf.readInt32BE(i + 1)
    fn(String.fromCharCode(buf[i]), i, i + 1 + len)
    i += 1 + len
  }
}

/** Status byte of the last ReadyForQuery in a backend response, or null. */
function lastReadyStatus(buf) {
  let status = null
  forEachMessage(buf, (type, start) => {
    if (type === 'Z') status = String.fromCharCode(buf[start + 5])
  })
  return status
}

/** Keeps only the backend messages whose type satisfies keep(type). */
function filterMessages(buf, keep) {
  const parts = []
  forEachMessage(buf, (type, start, end) => {
    if (keep(type)) parts.push(buf.subarray(start, end))
  })
  return Buffer.concat(parts)
}

/** Extracts DataRow text values, the error message and status of a response. */
function parseSimpleResult(buf) {
  const rows = []
  let error = null
  forEachMessage(buf, (type, start) => {
    if (type === 'D') {
      const n = buf.readInt16BE(start + 5)
      let p = start + 7
      const row = []
      for (let i = 0; i < n; i++) {
        const len = buf.readInt32BE(p)
        p += 4
        row.push(len < 0 ? null : buf.toString('utf8', p, p + len))
        if (len > 0) p += len
      }
      rows.push(row)
    } else if (type === 'E' && !error) {
      const fields = {}
      let p = start + 5
      while (buf[p] !== 0) {
        const key = String.fromCharCode(buf[p])
        const [value, next] = readCString(buf, p + 1)
        fields[key] = value
        p = next
      }
      error = `${fields.C}: ${fields.M}`
    }
  })
  return { rows, error, status: lastReadyStatus(buf) }
}

/**
 * Accumulates socket chunks and cuts them into whole protocol messages without
 * concatenating more than needed (a 100 MB message arrives as many chunks).
 */
class MessageReader {
  constructor() {
    this.chunks = []
    this.length = 0
  }

  push(chunk) {
    this.chunks.push(chunk)
    this.length += chunk.length
  }

  #peek(n) {
    if (this.chunks[0].length < n) {
      // Merge the first chunks so that the header is contiguous.
      const merged = Buffer.concat(this.chunks)
      this.chunks = [merged]
    }
    return this.chunks[0]
  }

  #take(n) {
    const head = this.chunks[0]
    if (head.length >= n) {
      if (head.length === n) this.chunks.shift()
      else this.chunks[0] = head.subarray(n)
      this.length -= n
      return head.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    let off = 0
    while (off < n) {
      const c = this.chunks[0]
      const k = Math.min(c.length, n - off)
      c.copy(out, off, 0, k)
      off += k
      if (k === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(k)
    }
    this.length -= n
    return out
  }

  #checkLength(len, min) {
    if (len < min) throw new ProtocolError(`invalid message length ${len}`)
    if (len > MAX_MESSAGE_BYTES) {
      throw new ProtocolError(
        `message of ${len} bytes exceeds this server's limit of ${MAX_MESSAGE_BYTES} bytes`,
        '54000',
      )
    }
  }

  /** Next untyped startup-phase message (length-prefixed), or null. */
  nextStartup() {
    if (this.length < 4) return null
    const len = this.#peek(4).readInt32BE(0)
    this.#checkLength(len, 8)
    if (this.length < len) return null
    return this.#take(len)
  }

  /** Next typed message as {type, raw, body}, or null. */
  nextMessage() {
    if (this.length < 5) return null
    const header = this.#peek(5)
    const len = header.readInt32BE(1)
    this.#checkLength(len, 4)
    if (this.length < len + 1) return null
    const raw = this.#take(len + 1)
    return { type: String.fromCharCode(raw[0]), raw, body: raw.subarray(5) }
  }
}

// ---------------------------------------------------------------------------
// SQL inspection (only what the COPY and session handling need)

function stripLeadingComments(sql) {
  let s = sql
  for (;;) {
    s = s.replace(/^\s+/, '')
    if (s.startsWith('--')) {
      const nl = s.indexOf('\n')
      s = nl < 0 ? '' : s.slice(nl + 1)
    } else if (s.startsWith('/*')) {
      const end = s.indexOf('*/')
      s = end < 0 ? '' : s.slice(end + 2)
    } else {
      return s
    }
  }
}

// A statement starting with COPY that reads FROM STDIN before its semicolon.
const COPY_FROM_STDIN_ANYWHERE = /(?:^|;)\s*COPY\b[^;]*?\bFROM\s+STDIN\b/i
const COPY_FROM_STDIN_ONLY = /^COPY\b[^;]*?\bFROM\s+STDIN\b[^;]*;?\s*$/i

/** Blanks the insides of '...' and "..." so that their ';' are not seen. */
function maskQuoted(sql) {
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g, (q) => q[0] + ' '.repeat(q.length - 2) + q[0])
}

/**
 * Classifies a query string: null (no COPY FROM STDIN), 'single' (exactly one
 * COPY FROM STDIN statement) or 'mixed' (COPY FROM STDIN among others).
 */
function copyFromStdinKind(sql) {
  if (!/copy/i.test(sql) || !/stdin/i.test(sql)) return null
  const s = maskQuoted(stripLeadingComments(sql))
  if (COPY_FROM_STDIN_ONLY.test(s)) return 'single'
  if (COPY_FROM_STDIN_ANYWHERE.test(s)) return 'mixed'
  return null
}

/** Format and column count of a COPY FROM STDIN statement, from its text. */
function describeCopy(sql) {
  const s = stripLeadingComments(sql)
  const m = /\bFROM\s+STDIN\b/i.exec(s)
  const head = s.slice(0, m.index)
  const options = s.slice(m.index + m[0].length)
  const binary = /^COPY\s+BINARY\b/i.test(head) || /\bbinary\b/i.test(options)
  const cols = /\(([^()]*)\)\s*$/.exec(head)
  const ncols = cols ? cols[1].split(',').filter((c) => c.trim()).length : 0
  return { binary, ncols }
}

/** An empty copy stream, valid for the given format. */
function emptyCopyData(binary) {
  if (!binary) return Buffer.alloc(0)
  // Binary COPY requires the file header even for zero rows:
  // signature, flags, header-extension length, then the -1 trailer.
  const header = Buffer.concat([
    Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
    int32(0),
    int32(0),
    Buffer.from([0xff, 0xff]),
  ])
  return message('d', header)
}

const RESETS_SESSION = /\b(?:DISCARD\s+ALL|RESET\s+ALL)\b/i
const DEALLOCATE_ALL = /^\s*DEALLOCATE\s+(?:PREPARE\s+)?ALL\s*;?\s*$/i
const DEALLOCATE_ONE = /^\s*DEALLOCATE\s+(?:PREPARE\s+)?(?:"([^"]+)"|(\w+))\s*;?\s*$/i

// ---------------------------------------------------------------------------
// PGlite instances

const distDir = new URL('../node_modules/@electric-sql/pglite/dist/', import.meta.url)
let sharedAssets = null

/** The compiled WebAssembly module and file-system bundle, shared by instances. */
async function assets() {
  if (!sharedAssets) {
    sharedAssets = (async () => {
      const [wasm, data] = await Promise.all([
        fs.promises.readFile(new URL('pglite.wasm', distDir)),
        fs.promises.readFile(new URL('pglite.data', distDir)),
      ])
      return { wasmModule: await WebAssembly.compile(wasm), fsBundle: new Blob([data]) }
    })()
  }
  return sharedAssets
}

/** Runs one simple query on a PGlite instance, bypassing its client API. */
async function execSimple(db, sql) {
  const res = Buffer.from(await db.execProtocolRaw(queryMessage(sql), { syncToFs: false }))
  return parseSimpleResult(res)
}

// Settings every session starts with. PGlite's own defaults differ from a
// server's: client_min_messages is debug3 and TimeZone is GMT, and after
// DISCARD ALL / RESET ALL the search_path falls back to pg_catalog.
const SESSION_INIT_SQL =
  "SET search_path TO public; SET client_min_messages TO notice; SET TimeZone TO 'UTC'"

/** Applies SESSION_INIT_SQL; returns the backend's raw answer. */
async function initSession(db) {
  const res = Buffer.from(await db.execProtocolRaw(queryMessage(SESSION_INIT_SQL), { syncToFs: false }))
  const { error } = parseSimpleResult(res)
  if (error) throw new Error(`session initialisation failed: ${error}`)
  return res
}

async function createPGlite(dataDir) {
  const { wasmModule, fsBundle } = await assets()
  const options = { extensions: { timescaledb }, wasmModule, fsBundle }
  if (dataDir) options.dataDir = dataDir
  const db = await PGlite.create(options)
  // When PGlite reopens an existing data directory TimescaleDB is not loaded,
  // and inserts into hypertables fail. Loading it up front is harmless on a
  // fresh database (CREATE EXTENSION still works afterwards).
  const r = await execSimple(db, "LOAD 'timescaledb'")
  if (r.error) throw new Error(`LOAD 'timescaledb' failed: ${r.error}`)
  await initSession(db)
  return db
}

const REPORTED_SETTINGS = [
  'server_version',
  'server_encoding',
  'client_encoding',
  'DateStyle',
  'IntervalStyle',
  'integer_datetimes',
  'standard_conforming_strings',
  'TimeZone',
  'is_superuser',
  'session_authorization',
  'default_transaction_read_only',
  'in_hot_standby',
  'scram_iterations',
]

class Instance {
  constructor(server, name) {
    this.server = server
    this.name = name
    this.db = null
    this.clients = new Set()
    this.pendingClients = 0
    this.owner = null // the client whose transaction currently uses the session
    this.waitQueue = [] // clients with messages waiting for the session, FIFO
    this.pumping = false
    this.dead = false
    this.needsReset = false // last client left: reset the session before reuse
    this.reinitPending = false // a client ran DISCARD ALL / RESET ALL
    this.lastUsed = Date.now()
    this.settings = {}
    this.ready = this.#start()
  }

  async #start() {
    const t0 = Date.now()
    this.db = await this.server.newDatabase(this.name)
    const sql =
      'SELECT ' + REPORTED_SETTINGS.map((s) => `current_setting('${s}', true)`).join(', ')
    const r = await execSimple(this.db, sql)
    if (r.error) throw new Error(r.error)
    REPORTED_SETTINGS.forEach((name, i) => {
      if (r.rows[0][i] !== null) this.settings[name] = r.rows[0][i]
    })
    debug(`database "${this.name}" ready in ${Date.now() - t0} ms`)
  }

  get idle() {
    return (
      this.clients.size === 0 &&
      this.pendingClients === 0 &&
      !this.owner &&
      !this.pumping &&
      this.waitQueue.length === 0
    )
  }

  async close() {
    this.dead = true
    try {
      await this.ready
    } catch {
      return
    }
    try {
      await this.db.close()
    } catch (err) {
      debug(`closing database "${this.name}":`, err.message)
    }
  }

  /** A framed message arrived from client c. */
  enqueue(c, m) {
    if (this.dead) return
    if (c !== this.owner && c.skipTillSync) {
      this.#answerLocally(c, m, null)
      return
    }
    if (c !== this.owner && m.type === 'X' && c.inbox.length === 0) {
      // Terminate from a client that holds no transaction: no need to wait.
      c.terminate()
      this.detach(c)
      return
    }
    c.inbox.push(m)
    if (c !== this.owner && !this.waitQueue.includes(c)) this.#addWaiter(c)
    this.pump()
  }

  #addWaiter(c) {
    this.waitQueue.push(c)
    if (this.server.waitTimeoutMs > 0) {
      clearTimeout(c.waitTimer)
      c.waitTimer = setTimeout(() => this.#waitTimedOut(c), this.server.waitTimeoutMs)
    }
  }

  /** Client c's socket closed. */
  clientClosed(c) {
    if (this.owner === c || this.waitQueue.includes(c)) {
      // Its queued messages still run (as a server would execute what it had
      // received), then the pump rolls back and detaches it.
      this.pump()
    } else {
      this.detach(c)
    }
  }

  detach(c) {
    clearTimeout(c.waitTimer)
    const i = this.waitQueue.indexOf(c)
    if (i >= 0) this.waitQueue.splice(i, 1)
    if (!this.clients.delete(c)) return
    if (this.clients.size === 0) {
      this.needsReset = true
      this.pump()
    }
  }

  /**
   * Serves the session owner's messages, then hands the session to the next
   * waiting client. Only one pump runs per instance, which is what serialises
   * all access to the PGlite session.
   */
  async pump() {
    if (this.pumping || this.dead) return
    this.pumping = true
    try {
      for (;;) {
        if (this.dead) return
        if (!this.owner) {
          if (this.needsReset) {
            this.needsReset = false
            await this.#resetSession()
          }
          const next = this.waitQueue.shift()
          if (!next) return
          clearTimeout(next.waitTimer)
          this.owner = next
        }
        const c = this.owner
        if (c.inbox.length === 0) {
          if (!c.closed) return // inside a transaction: wait for its next message
          await this.#endClientSession(c)
          continue
        }
        const m = c.inbox.shift()
        this.lastUsed = Date.now()
        await this.#handle(c, m)
      }
    } catch (err) {
      await this.#engineFailed(this.owner, err)
    } finally {
      this.pumping = false
    }
    // A failure above may have left work queued.
    if (!this.dead && (this.waitQueue.length || this.needsReset)) this.pump()
  }

  async #exec(bytes) {
    // The returned view points into PGlite's receive buffer, which the next
    // call reuses: copy it.
    return Buffer.from(await this.db.execProtocolRaw(bytes, { syncToFs: false }))
  }

  /** Sends a message to PGlite for client c and relays the answer. */
  async #forward(c, m, response = null) {
    const res = response ?? (await this.#exec(m.raw))
    c.send(res)
    this.#track(c, m.type, lastReadyStatus(res))
  }

  /** Follows client c's protocol state from the answer to a message. */
  #track(c, type, status) {
    if (status) {
      c.txStatus = status
      c.midBatch = false
    } else if ('PBDEC'.includes(type)) {
      // Extended-protocol messages pending until Sync. (Flush starts nothing:
      // libpq sends one after the Sync that ends a pipeline.)
      c.midBatch = true
    }
  }

  async #handle(c, m) {
    if (c.copy) await this.#handleCopyMessage(c, m)
    else await this.#handleMessage(c, m)
    if (this.owner !== c || c.txStatus !== 'I' || c.midBatch || c.copy) return
    // Transaction boundary: let the next waiting client in.
    if (this.reinitPending) {
      this.reinitPending = false
      // ParameterStatus may be sent at any time: keep the client's view of
      // TimeZone etc. right.
      c.send(filterMessages(await initSession(this.db), (t) => t === 'S'))
    }
    this.owner = null
    if (c.inbox.length) this.#addWaiter(c)
    else if (c.closed) this.detach(c)
  }

  async #handleMessage(c, m) {
    switch (m.type) {
      case 'X':
        await this.#endClientSession(c)
        c.terminate()
        return
      case 'd':
      case 'c':
      case 'f':
        return // stray COPY messages are ignored, as PostgreSQL does
      case 'Q': {
        const [sql] = readCString(m.body, 0)
        const kind = copyFromStdinKind(sql)
        if (kind === 'single') return this.#startSimpleCopy(c, m, sql)
        if (kind === 'mixed') {
          c.send(
            Buffer.concat([
              errorResponse({
                code: '0A000',
                text: 'COPY FROM STDIN must be the only statement in its query string on this server',
              }),
              readyForQuery(c.txStatus),
            ]),
          )
          return
        }
        if (RESETS_SESSION.test(sql)) this.reinitPending = true
        if (DEALLOCATE_ALL.test(sql)) {
          // Only this client's statements: the others' share the session.
          const status = await this.#closeStatements(c, true)
          c.send(Buffer.concat([message('C', cstr('DEALLOCATE ALL')), readyForQuery(status)]))
          c.txStatus = status
          return
        }
        const dealloc = DEALLOCATE_ONE.exec(sql)
        if (dealloc) {
          const name = dealloc[1] ?? dealloc[2].toLowerCase()
          if (c.prepared.delete(name)) {
            m = replaceCString(m, 0, sql, `DEALLOCATE "${c.scoped(name)}"`)
          }
        }
        break
      }
      case 'P': {
        const [name, p] = readCString(m.body, 0)
        const [sql] = readCString(m.body, p)
        if (copyFromStdinKind(sql)) c.copyStatements.set(name, describeCopy(sql))
        else c.copyStatements.delete(name)
        if (RESETS_SESSION.test(sql)) this.reinitPending = true
        if (DEALLOCATE_ALL.test(sql)) {
          // Pipelined DEALLOCATE ALL: close this client's statements, and
          // run a no-op in its place.
          await this.#closeStatements(c, false)
          m = replaceCString(m, p, sql, 'DO $$BEGIN END$$')
        }
        if (name) {
          c.prepared.add(name)
          m = replaceCString(m, 0, name, c.scoped(name))
        }
        break
      }
      case 'B': {
        const [portal, p] = readCString(m.body, 0)
        const [statement] = readCString(m.body, p)
        const copy = c.copyStatements.get(statement)
        if (copy) c.copyPortals.set(portal, copy)
        else c.copyPortals.delete(portal)
        if (statement) m = replaceCString(m, p, statement, c.scoped(statement))
        break
      }
      case 'D': {
        const [name] = readCString(m.body, 1)
        if (m.body[0] === 0x53 && name) m = replaceCString(m, 1, name, c.scoped(name))
        break
      }
      case 'E': {
        const [portal] = readCString(m.body, 0)
        const copy = c.copyPortals.get(portal)
        if (copy) {
          // Extended-protocol COPY: describe it from the statement text, as
          // executing the portal twice is not possible.
          c.send(copyInResponse(copy.binary, copy.ncols))
          c.copy = { prefix: [m.raw], chunks: [], bytes: 0, extended: true, failure: null }
          return
        }
        break
      }
      case 'C': {
        const [name] = readCString(m.body, 1)
        if (m.body[0] === 0x53) {
          c.copyStatements.delete(name)
          c.prepared.delete(name)
          if (name) m = replaceCString(m, 1, name, c.scoped(name))
        } else {
          c.copyPortals.delete(name)
        }
        break
      }
    }
    await this.#forward(c, m)
  }

  /**
   * Closes client c's named prepared statements; with sync, also ends the
   * batch and returns the transaction status.
   */
  async #closeStatements(c, sync) {
    const closes = [...c.prepared].map((name) =>
      message('C', Buffer.concat([Buffer.from('S'), cstr(c.scoped(name))])),
    )
    c.prepared.clear()
    // One message per call, as everywhere; the CloseComplete replies are
    // for us, not for the client.
    for (const close of closes) await this.#exec(close)
    if (!sync) return c.txStatus
    return lastReadyStatus(await this.#exec(SYNC)) ?? c.txStatus
  }

  /**
   * COPY ... FROM STDIN in a simple Query. PGlite is first asked to run the
   * COPY on an empty stream: that yields the exact CopyInResponse (or the
   * error, e.g. a missing table) before the client sends any data, as with a
   * real server. Copying zero rows has no effect on the data.
   */
  async #startSimpleCopy(c, m, sql) {
    const { binary } = describeCopy(sql)
    const probe = await this.#exec(Buffer.concat([m.raw, emptyCopyData(binary), COPY_DONE]))
    const copyIn = filterMessages(probe, (t) => t === 'G')
    if (!copyIn.length) {
      // The COPY failed before reading data: relay the error as is.
      await this.#forward(c, m, probe)
      return
    }
    c.send(copyIn)
    c.copy = { prefix: [m.raw], chunks: [], bytes: 0, extended: false, failure: null }
  }

  async #handleCopyMessage(c, m) {
    const copy = c.copy
    switch (m.type) {
      case 'd':
        if (copy.failure) return
        copy.bytes += m.raw.length
        if (copy.bytes > MAX_COPY_BYTES) {
          copy.failure = `COPY data exceeds this server's limit of ${MAX_COPY_BYTES} bytes`
          copy.chunks = []
        } else {
          copy.chunks.push(m.raw)
        }
        return
      case 'S':
      case 'H':
        return // ignored during copy-in, as PostgreSQL does
      case 'c':
        return this.#finishCopy(c, copy.failure ? copyFail(copy.failure) : m.raw)
      case 'f':
        return this.#finishCopy(c, m.raw)
      default:
        // Any other message aborts the copy; PostgreSQL discards it too.
        return this.#finishCopy(
          c,
          copyFail(`unexpected message type 0x${m.raw[0].toString(16)} during COPY from stdin`),
        )
    }
  }

  async #finishCopy(c, endMessage) {
    const copy = c.copy
    c.copy = null
    const input = Buffer.concat([...copy.prefix, ...copy.chunks, endMessage])
    copy.chunks = null
    const res = await this.#exec(input)
    // The client already got a CopyInResponse from us.
    const out = filterMessages(res, (t) => t !== 'G')
    c.send(out)
    this.#track(c, copy.extended ? 'E' : 'Q', lastReadyStatus(out))
  }

  /**
   * Rolls back whatever client c left behind (it is the owner), then releases
   * the session and forgets the client.
   */
  async #endClientSession(c) {
    c.copy = null
    let status = c.txStatus
    if (c.midBatch) {
      // An unsynced extended-protocol batch: a simple ROLLBACK aborts its
      // implicit transaction (unless the backend is skipping to Sync after an
      // error), and the Sync returns the backend to a known state.
      await this.#exec(queryMessage('ROLLBACK'))
      status = lastReadyStatus(await this.#exec(SYNC)) ?? status
    }
    if (status !== 'I') await execSimple(this.db, 'ROLLBACK')
    c.txStatus = 'I'
    c.midBatch = false
    if (c.prepared.size && this.clients.size > 1) await this.#closeStatements(c, true)
    if (this.owner === c) this.owner = null
    this.detach(c)
  }

  async #resetSession() {
    // Like a fresh backend for the next client: no leftover settings,
    // prepared statements or temporary tables.
    const r = await execSimple(this.db, 'DISCARD ALL')
    if (r.error) log(`database "${this.name}": DISCARD ALL failed: ${r.error}`)
    await initSession(this.db)
  }

  /** A waiting client timed out: fail its next statement without running it. */
  #waitTimedOut(c) {
    const i = this.waitQueue.indexOf(c)
    if (i < 0 || c.closed) return
    this.waitQueue.splice(i, 1)
    const error = errorResponse({
      code: '55P03',
      text:
        `timed out after ${this.server.waitTimeoutMs / 1000} s waiting for another ` +
        `connection's transaction on database "${this.name}"`,
      hint:
        'This server runs one session per database; connections take turns at ' +
        'transaction boundaries. Commit or roll back the other connection first.',
    })
    let first = true
    while (c.inbox.length) {
      const m = c.inbox.shift()
      const done = this.#answerLocally(c, m, first ? error : null)
      first = false
      if (done) break
    }
    if (c.inbox.length) this.#addWaiter(c)
  }

  /**
   * Answers a message of a client that does not own the session, the way
   * PostgreSQL answers after an error: the error once, then skip to Sync.
   * Returns true once a ReadyForQuery has been sent.
   */
  #answerLocally(c, m, error) {
    if (m.type === 'X') {
      c.terminate()
      this.detach(c)
      return true
    }
    if (c.skipTillSync) {
      if (m.type !== 'S') return false
      c.skipTillSync = false
      c.send(readyForQuery('I'))
      return true
    }
    if ('dcf'.includes(m.type)) return false
    const parts = error ? [error] : []
    if (m.type === 'Q' || m.type === 'F' || m.type === 'S') {
      parts.push(readyForQuery('I'))
      c.send(Buffer.concat(parts))
      return true
    }
    c.send(Buffer.concat(parts))
    c.skipTillSync = true
    return false
  }

  /** execProtocolRaw threw: find out whether the engine survived. */
  async #engineFailed(c, err) {
    log(`database "${this.name}": engine error:`, err?.stack || err)
    let alive = false
    if (!this.dead) {
      try {
        await this.#exec(SYNC)
        const r = await execSimple(this.db, 'ROLLBACK')
        alive = r.status === 'I'
      } catch {
        alive = false
      }
    }
    const fatal = (text) =>
      errorResponse({ severity: 'FATAL', code: 'XX000', text, detail: String(err?.message || err) })
    if (alive) {
      // Only the client whose message failed loses its connection.
      if (c) {
        c.send(fatal('internal error in the database engine; connection closed'))
        c.terminate()
        c.txStatus = 'I'
        c.midBatch = false
        if (this.owner === c) this.owner = null
        this.detach(c)
      }
      return
    }
    log(`database "${this.name}": engine is dead; it will be recreated on the next connection`)
    this.dead = true
    this.server.forget(this)
    for (const client of this.clients) {
      client.send(fatal(`the database engine for "${this.name}" failed; its data is lost`))
      client.terminate()
    }
    this.clients.clear()
    this.waitQueue = []
    this.owner = null
    this.db.close().catch(() => {})
  }
}

// ---------------------------------------------------------------------------
// Client connections

let nextClientId = 1

class Client {
  constructor(server, socket) {
    this.server = server
    this.socket = socket
    this.id = nextClientId++
    this.secret = crypto.randomInt(0, 2 ** 31)
    this.reader = new MessageReader()
    this.phase = 'startup' // startup -> connecting -> ready
    this.instance = null
    this.inbox = []
    this.txStatus = 'I'
    this.midBatch = false
    this.closed = false
    this.skipTillSync = false
    this.copy = null
    this.copyStatements = new Map()
    this.copyPortals = new Map()
    // Named prepared statements, as the client calls them. In the shared
    // session they carry a per-client prefix, so that clients (psycopg names
    // its statements _pg3_0, _pg3_1, ... on every connection) cannot collide.
    this.prepared = new Set()
    this.waitTimer = null

    socket.setNoDelay(true)
    socket.on('data', (chunk) => this.#onData(chunk))
    socket.on('error', (err) => debug(`client ${this.id}: socket error: ${err.message}`))
    socket.on('close', () => this.#onClose())
  }

  scoped(name) {
    return `c${this.id}_${name}`
  }

  send(buf) {
    if (buf.length && !this.socket.destroyed && this.socket.writable) this.socket.write(buf)
  }

  terminate() {
    this.closed = true
    if (!this.socket.destroyed) this.socket.end()
  }

  fatal(code, text) {
    this.send(errorResponse({ severity: 'FATAL', code, text }))
    this.terminate()
  }

  #onClose() {
    this.closed = true
    debug(`client ${this.id}: disconnected`)
    this.server.clients.delete(this)
    this.instance?.clientClosed(this)
    if (this.server.clients.size === 0) setImmediate(() => this.server.refillSpares())
  }

  #onData(chunk) {
    if (this.closed) return
    this.reader.push(chunk)
    try {
      this.#drain()
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err
      log(`client ${this.id}: protocol error: ${err.message}`)
      this.fatal(err.code, err.message)
      this.socket.destroy()
    }
  }

  #drain() {
    while (!this.closed) {
      if (this.phase === 'startup') {
        const raw = this.reader.nextStartup()
        if (!raw) return
        this.#startupMessage(raw)
      } else if (this.phase === 'ready') {
        const m = this.reader.nextMessage()
        if (!m) return
        this.instance.enqueue(this, m)
      } else {
        return // connecting: messages wait in the reader
      }
    }
  }

  #startupMessage(raw) {
    const code = raw.readInt32BE(4)
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      // No encryption: the client continues in plain text.
      this.socket.write('N')
      return
    }
    if (code === CANCEL_REQUEST) {
      // Cancellation is not supported; a server closes the cancel
      // connection without an answer either way.
      this.closed = true
      this.socket.destroy()
      return
    }
    const major = code >> 16
    const minor = code & 0xffff
    if (major !== PROTOCOL_3) {
      this.fatal('0A000', `unsupported frontend protocol ${major}.${minor}`)
      return
    }
    const params = {}
    let p = 8
    while (p < raw.length && raw[p] !== 0) {
      const [key, next] = readCString(raw, p)
      const [value, after] = readCString(raw, next)
      params[key] = value
      p = after
    }
    const unknownOptions = Object.keys(params).filter((k) => k.startsWith('_pq_.'))
    if (minor > 0 || unknownOptions.length) {
      // We speak protocol 3.0 only; tell newer clients so.
      this.send(
        message(
          'v',
          Buffer.concat([int32(0), int32(unknownOptions.length), ...unknownOptions.map(cstr)]),
        ),
      )
    }
    this.phase = 'connecting'
    this.#connect(params).catch((err) => {
      log(`client ${this.id}: connection failed:`, err?.stack || err)
      this.fatal('XX000', `could not open database: ${err?.message || err}`)
    })
  }

  async #connect(params) {
    const user = params.user || 'postgres'
    const database = params.database || user
    debug(`client ${this.id}: connecting to "${database}" as "${user}"`)
    const instance = await this.server.acquire(database, (inst) => {
      if (this.closed) return false
      inst.clients.add(this)
      this.instance = inst
      return true
    })
    if (!instance) return
    const settings = { ...instance.settings, application_name: params.application_name ?? '' }
    const out = [message('R', int32(0))] // AuthenticationOk: any user and password
    for (const [k, v] of Object.entries(settings)) {
      out.push(message('S', Buffer.concat([cstr(k), cstr(v)])))
    }
    out.push(message('K', Buffer.concat([int32(this.id), int32(this.secret)])))
    out.push(readyForQuery('I'))
    this.send(Buffer.concat(out))
    this.phase = 'ready'
    this.#drain()
  }
}

// ---------------------------------------------------------------------------
// Server

class Server {
  constructor(config) {
    this.config = config
    this.waitTimeoutMs = config.waitTimeoutMs
    this.instances = new Map() // key -> Instance
    this.closing = new Map() // key -> Promise of an instance being closed
    this.clients = new Set()
    this.spares = []
    this.tcp = null
    this.stopping = false
  }

  /** Instance key and data directory name for a database name. */
  keyFor(name) {
    let key = name.replace(/[^A-Za-z0-9_]/g, '_')
    // Keep distinct names distinct after sanitising ("a-b" vs "a_b").
    if (key !== name || key === '') {
      key += '_' + crypto.createHash('sha1').update(name).digest('hex').slice(0, 8)
    }
    return key
  }

  /** A fresh PGlite for database `name`, from the spare pool when possible. */
  async newDatabase(name) {
    if (this.config.dataDir) {
      fs.mkdirSync(this.config.dataDir, { recursive: true })
      return createPGlite(path.join(this.config.dataDir, this.keyFor(name)))
    }
    const spare = this.spares.shift()
    if (spare) {
      try {
        return await spare
      } catch {
        // fall through to a new instance
      }
    }
    return createPGlite(null)
  }

  /**
   * Creating an instance blocks the event loop for up to a second or so
   * (initdb and backend start-up run synchronously), which would stall every
   * connected client. Spares are therefore only made while no client is
   * connected at all, typically between two tests.
   */
  refillSpares() {
    const missing = this.config.prewarm - this.spares.length
    if (missing <= 0 || this.stopping || this.clients.size > 0) return null
    const p = createPGlite(null)
    p.catch((err) => log('creating a spare instance failed:', err?.message || err))
    this.spares.push(p)
    if (missing > 1) p.then(() => this.refillSpares(), () => {})
    return p
  }

  /**
   * The live instance for `name`, created if needed. attach(inst) runs
   * synchronously once it is ready, so that it cannot be evicted in between.
   */
  async acquire(name, attach) {
    const key = this.keyFor(name)
    let inst = this.instances.get(key)
    if (!inst || inst.dead) {
      await this.#evictFor(key)
      inst = this.instances.get(key)
      if (!inst || inst.dead) {
        await this.closing.get(key) // same data directory: wait for the old one
        inst = this.instances.get(key)
        if (!inst || inst.dead) {
          inst = new Instance(this, name)
          this.instances.set(key, inst)
        }
      }
    }
    inst.pendingClients++
    try {
      await inst.ready
    } catch (err) {
      if (this.instances.get(key) === inst) this.instances.delete(key)
      inst.dead = true
      throw err
    } finally {
      inst.pendingClients--
    }
    if (inst.dead) return this.acquire(name, attach)
    inst.lastUsed = Date.now()
    return attach(inst) ? inst : null
  }

  async #evictFor(key) {
    const live = [...this.instances.entries()].filter(([k, i]) => k !== key && !i.dead)
    let excess = live.length + 1 - this.config.maxInstances
    if (excess <= 0) return
    const idle = live.filter(([, i]) => i.idle).sort((a, b) => a[1].lastUsed - b[1].lastUsed)
    for (const [k, inst] of idle.slice(0, excess)) {
      debug(`closing least recently used database "${inst.name}"`)
      this.instances.delete(k)
      const p = inst.close().finally(() => this.closing.delete(k))
      this.closing.set(k, p)
      excess--
    }
    if (excess > 0) {
      log(
        `more than ${this.config.maxInstances} databases have connected clients; ` +
          `running ${live.length + 1} instances`,
      )
    }
  }

  forget(inst) {
    for (const [k, i] of this.instances) if (i === inst) this.instances.delete(k)
  }

  async start() {
    // Warm the first spare before listening: it proves the engine starts, and
    // the first client does not wait for it.
    await this.refillSpares()
    this.tcp = net.createServer((socket) => {
      if (this.stopping) return socket.destroy()
      const c = new Client(this, socket)
      this.clients.add(c)
      debug(`client ${c.id}: connected from ${socket.remoteAddress}:${socket.remotePort}`)
    })
    await new Promise((resolve, reject) => {
      this.tcp.once('error', reject)
      this.tcp.listen(this.config.port, this.config.host, () => {
        this.tcp.off('error', reject)
        resolve()
      })
    })
    this.tcp.on('error', (err) => log('server error:', err.message))
    return this.tcp.address().port
  }

  async stop() {
    if (this.stopping) return
    this.stopping = true
    this.tcp?.close()
    for (const c of this.clients) c.socket.destroy()
    const closes = [...this.instances.values()].map((i) => i.close())
    closes.push(...this.closing.values())
    for (const spare of this.spares) closes.push(spare.then((db) => db.close()).catch(() => {}))
    await Promise.allSettled(closes)
  }
}

// ---------------------------------------------------------------------------

async function main() {
  let config
  try {
    config = parseCli(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`)
    process.exit(2)
  }
  verbose = config.verbose
  const server = new Server(config)
  const shutdown = async (signal) => {
    debug(`${signal}: shutting down`)
    // A second signal while closing gives up on a clean shutdown.
    if (signal.startsWith('SIG')) process.once(signal, () => process.exit(1))
    await server.stop()
    process.exit(0)
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
  // A test runner that dies without stopping us (SIGKILL, crash) would leave
  // an orphan holding hundreds of MB: exit when the parent process goes away.
  const parent = process.ppid
  setInterval(() => process.ppid !== parent && shutdown('parent exit'), 1000).unref()
  let port
  try {
    port = await server.start()
  } catch (err) {
    log(`cannot start on ${config.host}:${config.port}: ${err?.message || err}`)
    process.exit(1)
  }
  if (server.stopping) return
  process.stdout.write(`READY ${port}\n`)
}

main().catch((err) => {
  log('fatal:', err?.stack || err)
  process.exit(1)
})
