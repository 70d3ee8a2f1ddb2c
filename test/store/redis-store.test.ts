import t from 'tap'
import { Redis } from 'ioredis'
import { createServer, type Server, type Socket } from 'node:net'
import { RedisStateStore } from '../../src/store/redis-store.js'
import { StoreUnavailableError } from '../../src/store/state-store.js'
import { deadline } from '../helpers/deadline.js'
import { STORE_TIMEOUT_MS, redisTarget, testPrefix } from '../helpers/redis.js'
import { stateStoreContract } from './contract.js'

const target = await redisTarget()

/** Deletes every key under a prefix, so tests leave the shared server as they found it. */
async function cleanup(url: string, prefix: string): Promise<void> {
  const raw = new Redis(url, { lazyConnect: true })
  await raw.connect()
  let cursor = '0'
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    if (keys.length > 0) await raw.del(...keys)
    cursor = next
  } while (cursor !== '0')
  await raw.quit()
}

async function connected(t: { teardown(fn: () => unknown): void }, url: string, prefix = testPrefix(), timeoutMs = Number(STORE_TIMEOUT_MS)) {
  const store = await RedisStateStore.connect({ url, prefix, timeoutMs })
  t.teardown(async () => {
    await store.close()
    await cleanup(url, prefix)
  })
  return store
}

t.test('RedisStateStore', { skip: target.skip }, async (t) => {
  const url = target.url!

  t.test('contract', async (t) => {
    stateStoreContract(t, async () => ({ store: await connected(t, url) }))
  })

  t.test('two instances on one Redis see each other\'s writes', async (t) => {
    const prefix = testPrefix()
    const a = await connected(t, url, prefix)
    const b = await RedisStateStore.connect({ url, prefix, timeoutMs: Number(STORE_TIMEOUT_MS) })
    t.teardown(() => b.close())
    const w = a.batch()
    w.hSet('device:alice:d1', { trust: '70' }, 60_000)
    const first = w.sAdd('countries:alice', 'GB', 60_000)
    await w.exec()
    const r = b.batch()
    const device = r.hGetAll('device:alice:d1')
    const again = r.sAdd('countries:alice', 'GB', 60_000)
    await r.exec()
    t.same(device.value, { trust: '70' })
    t.equal(first.value, true)
    t.equal(again.value, false, 'the second replica knows the country already')
  })

  t.test('concurrent clamped increments from two clients lose no update', async (t) => {
    const prefix = testPrefix()
    const a = await connected(t, url, prefix)
    const b = await RedisStateStore.connect({ url, prefix, timeoutMs: Number(STORE_TIMEOUT_MS) })
    t.teardown(() => b.close())
    const bump = async (store: RedisStateStore) => {
      const batch = store.batch()
      batch.hIncrClamped('trust', 'd1', 1, 0, 0, 1000, 60_000)
      await batch.exec()
    }
    await Promise.all(Array.from({ length: 100 }, (_, i) => bump(i % 2 === 0 ? a : b)))
    const r = a.batch()
    const all = r.hGetAll('trust')
    await r.exec()
    t.same(all.value, { d1: '100' })
  })

  t.test('batches started together run in the order they were started', async (t) => {
    const store = await connected(t, url)
    // Sent back to back: the read must still come after the write before it and before the one after.
    const w = store.batch()
    w.set('k', 'first', 60_000)
    const r = store.batch()
    const seen = r.get('k')
    const w2 = store.batch()
    w2.set('k', 'second', 60_000)
    await Promise.all([w.exec(), r.exec(), w2.exec()])
    t.equal(seen.value, 'first')
  })

  t.test('the background batches of one turn go out as one script call, in one socket write with the next batch', async (t) => {
    const store = await connected(t, url)
    const client = store.client as Redis
    const calls: string[] = []
    const send = client.sendCommand.bind(client)
    client.sendCommand = (command, stream) => (calls.push(command.name), send(command, stream))
    // Chunks per system call on the connection's socket: Node writes corked chunks with one writev.
    const socket = client.stream as Socket & { _write: Socket['_write']; _writev: NonNullable<Socket['_writev']> }
    const writes: number[] = []
    const write = socket._write
    const writev = socket._writev
    socket._write = function (chunk, encoding, done) {
      writes.push(1)
      return write.call(this, chunk, encoding, done)
    }
    socket._writev = function (chunks, done) {
      writes.push(chunks.length)
      return writev.call(this, chunks, done)
    }
    t.teardown(() => {
      client.sendCommand = send
      socket._write = write
      socket._writev = writev
    })
    const background = Array.from({ length: 5 }, (_, i) => {
      const b = store.batch({ background: true })
      b.sAdd('bg:set', `m${i}`, 60_000)
      return b.exec()
    })
    const read = store.batch()
    const members = read.sCard('bg:set')
    await read.exec()
    await Promise.all(background)
    t.equal(members.value, 5)
    t.same(calls, ['evalsha', 'evalsha'], 'the five background batches as one call, then the read')
    t.same(writes, [2], 'both calls in one write')
  })

  t.test('past 1,024 held operations, background batches go out at once instead of waiting for the turn to end', async (t) => {
    const store = await connected(t, url)
    const client = store.client as Redis
    const sizes: number[] = []
    const send = client.sendCommand.bind(client)
    // EVALSHA's third argument is the number of keys: one per operation.
    client.sendCommand = (command, stream) => (sizes.push(Number(command.args[1])), send(command, stream))
    t.teardown(() => {
      client.sendCommand = send
    })
    const written = Array.from({ length: 1_100 }, (_, i) => {
      const b = store.batch({ background: true })
      b.set(`bg:many:${i}`, 'v', 60_000)
      return b.exec()
    })
    t.same(sizes, [1_024], 'the first 1,024 sent as soon as they were held')
    await Promise.all(written)
    t.same(sizes, [1_024, 76], 'the rest at the end of the turn')
  })

  t.test('a background batch that fails does not fail the batch after it', async (t) => {
    const store = await connected(t, url)
    const setup = store.batch()
    setup.set('not-a-set', 'text', 60_000)
    await setup.exec()
    const bad = store.batch({ background: true })
    bad.sAdd('not-a-set', 'm', 60_000)
    const failed = t.rejects(bad.exec(), { message: /^Redis batch failed: .*WRONGTYPE/ })
    const read = store.batch()
    const v = read.get('not-a-set')
    await read.exec()
    t.equal(v.value, 'text')
    await failed
  })

  t.test('held background writes go out before the store closes', async (t) => {
    const prefix = testPrefix()
    const reader = await connected(t, url, prefix)
    const store = await RedisStateStore.connect({ url, prefix, timeoutMs: Number(STORE_TIMEOUT_MS) })
    const b = store.batch({ background: true })
    b.set('last-words', 'sent', 60_000)
    const written = b.exec()
    await store.close()
    await written
    const r = reader.batch()
    const v = r.get('last-words')
    await r.exec()
    t.equal(v.value, 'sent')
  })

  t.test('the prefix isolates deployments', async (t) => {
    const a = await connected(t, url)
    const b = await connected(t, url)
    const w = a.batch()
    w.set('shared-name', 'a', 60_000)
    await w.exec()
    const r = b.batch()
    const v = r.get('shared-name')
    await r.exec()
    t.equal(v.value, null)
  })
})

t.test('a Redis that is down fails fast with StoreUnavailableError', async (t) => {
  const errors: Error[] = []
  // A time-out longer than the test may take: only failing at once, not waiting for a reconnect, gives these errors.
  const store = await RedisStateStore.connect({ url: 'redis://127.0.0.1:1', timeoutMs: deadline(60_000), connectTimeoutMs: 200, onError: (e) => errors.push(e) })
  t.teardown(() => store.close())
  const b = store.batch()
  b.get('x')
  await t.rejects(b.exec(), new StoreUnavailableError('Redis batch failed: Stream isn\'t writeable and enableOfflineQueue options is false'), 'no waiting for reconnects')
  await t.rejects(store.ping(), { name: 'StoreUnavailableError', message: /^Redis is unavailable: / })
  t.ok(errors.length > 0, 'connection errors reach the error callback, not the process')
})

t.test('a server that stops answering times out instead of hanging', async (t) => {
  // Answers the connection handshake (CLIENT SETINFO, INFO), then swallows every command.
  const server: Server = createServer((socket) =>
    socket.on('data', (data) => {
      const text = data.toString()
      for (const _ of text.matchAll(/\$6\r\nclient\r\n/gi)) socket.write('+OK\r\n')
      if (/\*1\r\n\$4\r\ninfo\r\n/i.test(text)) {
        const body = '# Server\r\nloading:0\r\n'
        socket.write(`$${body.length}\r\n${body}\r\n`)
      }
    }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const store = await RedisStateStore.connect({ url: `redis://127.0.0.1:${port}`, timeoutMs: 50, connectTimeoutMs: 200 })
  t.teardown(async () => {
    await store.close()
    await new Promise((resolve) => server.close(resolve))
  })
  // The server never answers, so the time-out alone ends each call (the messages say so): no wall clock to race.
  const b = store.batch()
  b.get('x')
  await t.rejects(b.exec(), { name: 'StoreUnavailableError', message: /did not answer a batch within 50 ms/ }, 'bounded by the time-out')
  const held = store.batch({ background: true })
  held.set('x', 'y', 60_000)
  await t.rejects(held.exec(), { name: 'StoreUnavailableError', message: /did not answer a batch within 50 ms/ }, 'a background batch too')
  await t.rejects(store.ping(), { name: 'StoreUnavailableError', message: /did not answer PING within 50 ms/ })
})

t.test('a server that does not have the script yet is sent it, and the batch goes through', async (t) => {
  // Knows no script by its digest (as a new or flushed server), runs whatever EVAL sends it as a GET answering "v".
  const seen: string[] = []
  const server: Server = createServer((socket) =>
    socket.on('data', (data) => {
      for (const [, command] of data.toString().matchAll(/\*\d+\r\n\$\d+\r\n(\w+)\r\n/g)) {
        const name = command!.toLowerCase()
        seen.push(name)
        if (name === 'client') socket.write('+OK\r\n')
        else if (name === 'info') {
          const body = '# Server\r\nloading:0\r\n'
          socket.write(`$${body.length}\r\n${body}\r\n`)
        } else if (name === 'evalsha') socket.write('-NOSCRIPT No matching script. Please use EVAL.\r\n')
        else if (name === 'eval') socket.write('*1\r\n$1\r\nv\r\n')
      }
    }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const store = await RedisStateStore.connect({ url: `redis://127.0.0.1:${port}`, timeoutMs: deadline(5_000), connectTimeoutMs: deadline(5_000) })
  t.teardown(async () => {
    store.client.disconnect()
    await new Promise((resolve) => server.close(resolve))
  })
  const b = store.batch()
  const v = b.get('x')
  await b.exec()
  t.equal(v.value, 'v')
  t.same(seen.filter((name) => name.startsWith('eval')), ['evalsha', 'eval'], 'the digest first, the script once it is missing')
})

t.test('a server that answers "still loading" (or a cluster "down") is unavailable, not a bad batch', async (t) => {
  // Answers the connection handshake, then refuses every command as a server loading its data set does.
  const server: Server = createServer((socket) =>
    socket.on('data', (data) => {
      for (const [, command] of data.toString().matchAll(/\*\d+\r\n\$\d+\r\n(\w+)\r\n/g)) {
        const name = command!.toLowerCase()
        if (name === 'client') socket.write('+OK\r\n')
        else if (name === 'info') {
          const body = '# Server\r\nloading:0\r\n'
          socket.write(`$${body.length}\r\n${body}\r\n`)
        } else socket.write('-LOADING Redis is loading the dataset in memory\r\n')
      }
    }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const store = await RedisStateStore.connect({ url: `redis://127.0.0.1:${port}`, timeoutMs: 2000, connectTimeoutMs: 2000 })
  t.teardown(async () => {
    store.client.disconnect()
    await new Promise((resolve) => server.close(resolve))
  })
  const b = store.batch()
  b.get('x')
  await t.rejects(b.exec(), { name: 'StoreUnavailableError', message: /LOADING/ })
})
