/**
 * What the fuzzer calls: every export of `ts/index.ts`, each static factory and public instance
 * method of every exported class, with how to make the object a method is called on. Shared by
 * `__test__/fuzz.spec.ts` (which checks that nothing exported is missing) and
 * `__test__/helpers/fuzz-runner.ts` (which calls them with random arguments).
 */

/** Exports that are values, not callables: nothing to fuzz. */
export const CONSTANTS = [
  'IPC_PRIVATE',
  'MAX_FDS',
  'SEMAPHORE_VALUE_MAX',
  'POSIX_SEMAPHORE_VALUE_MAX',
  'zeroCopySupported',
  'realtimeSignals',
  'SNAPSHOT_SEALS',
]

/**
 * Prototype members not fuzzed, with the reason. Everything else on an exported class's
 * prototype chain (up to the Node.js base class) is.
 */
export const SKIPPED_MEMBERS: Record<string, string> = {
  constructor: 'constructors are fuzzed separately (public ones) or are @internal',
  _read: 'Node.js stream hook, called by the stream machinery, not by users',
  _write: 'Node.js stream hook, called by the stream machinery, not by users',
  _writev: 'Node.js stream hook, called by the stream machinery, not by users',
  _destroy: 'Node.js stream hook, called by the stream machinery, not by users',
  check: 'TypeScript `protected` member of MessageSocket',
  receiveOrEnd: 'TypeScript `protected` member of MessageSocket',
  receiveOrEndSync: 'TypeScript `protected` member of MessageSocket',
  iterateMessages: 'TypeScript `protected` member of MessageSocket',
  map: 'TypeScript `protected` member of MappedMemory and its subclasses',
  checkOpen: 'TypeScript `protected` member of MappedMemory',
  unmapCopies: 'TypeScript `protected` member of MappedMemory',
}

/** Classes whose constructor is public API (the others are `private` or `@internal`). */
export const PUBLIC_CONSTRUCTORS = ['IpcError', 'AbortError']

/** Classes whose constructor is `@internal` or private: built only through factories. */
export const INTERNAL_CONSTRUCTORS = [
  'MessageQueue',
  'SemaphoreSet',
  'Semaphore',
  'Mutex',
  'MutexGuard',
  'SharedMemory',
  'SharedMemoryView',
  'PipeReadable',
  'PipeWritable',
  'UnixDatagramSocket',
  'UnixSeqpacketSocket',
  'UnixSeqpacketServer',
  'SignalWatcher',
  'PosixMessageQueue',
  'PosixSemaphore',
  'MappedMemory',
  'PosixSharedMemory',
  'Memfd',
  'EventFd',
  'PidFd',
  'Channel',
]

/** Classes with public instance methods: the runner has a fixture (a fresh object per case) for each. */
export const FIXTURE_CLASSES = [
  'MessageQueue',
  'SemaphoreSet',
  'Semaphore',
  'Mutex',
  'MutexGuard',
  'SharedMemory',
  'SharedMemoryView',
  'PipeReadable',
  'PipeWritable',
  'UnixDatagramSocket',
  'UnixSeqpacketSocket',
  'UnixSeqpacketServer',
  'SignalWatcher',
  'PosixMessageQueue',
  'PosixSemaphore',
  'MappedMemory',
  'PosixSharedMemory',
  'Memfd',
  'EventFd',
  'PidFd',
  'Channel',
]

/** Base classes from Node.js where the walk up a prototype chain stops. */
export const FOREIGN_BASES = ['Readable', 'Writable', 'Duplex', 'Stream', 'EventEmitter', 'Error', 'Object']

/**
 * Sync methods that block by design. The fuzzer forces the given option onto the options
 * argument (at `index`) when it is `undefined` or an object (not an array), so that the call cannot wait;
 * any other value is passed unchanged (and must be refused by validation).
 */
export const BLOCKING_SYNC: Record<string, { index: number; force: Record<string, unknown> }> = {
  'MessageQueue#sendSync': { index: 1, force: { wait: false } },
  'MessageQueue#receiveSync': { index: 0, force: { wait: false } },
  'SemaphoreSet#opSync': { index: 1, force: { wait: false } },
  'Semaphore#acquireSync': { index: 0, force: { wait: false } },
  'Semaphore#waitForZeroSync': { index: 0, force: { wait: false } },
  'Mutex#lockSync': { index: 0, force: { wait: false } },
  'SharedMemory#waitSync': { index: 2, force: { timeoutMs: 10 } },
  'UnixDatagramSocket#sendSync': { index: 1, force: { wait: false } },
  'UnixDatagramSocket#receiveSync': { index: 0, force: { wait: false } },
  'UnixSeqpacketSocket#sendSync': { index: 1, force: { wait: false } },
  'UnixSeqpacketSocket#receiveSync': { index: 0, force: { wait: false } },
  'PosixMessageQueue#sendSync': { index: 1, force: { wait: false } },
  'PosixMessageQueue#receiveSync': { index: 0, force: { wait: false } },
  'PosixSemaphore#acquireSync': { index: 0, force: { timeoutMs: 10 } },
  'MappedMemory#waitSync': { index: 2, force: { timeoutMs: 10 } },
  'PosixSharedMemory#waitSync': { index: 2, force: { timeoutMs: 10 } },
  'Memfd#waitSync': { index: 2, force: { timeoutMs: 10 } },
  'EventFd#readSync': { index: 0, force: { wait: false } },
  'EventFd#writeSync': { index: 1, force: { wait: false } },
  'PidFd#waitExitSync': { index: 0, force: { timeoutMs: 10 } },
  'Channel#sendSync': { index: 1, force: { wait: false } },
  'Channel#postSync': { index: 1, force: { wait: false } },
  'Channel#receiveSync': { index: 0, force: { wait: false } },
}

/** Functions whose first argument is a descriptor they take ownership of (and close). */
export const FD_OWNERS = [
  'UnixDatagramSocket.fromFd',
  'UnixDatagramSocket.fromPairFd',
  'UnixSeqpacketSocket.fromFd',
  'UnixSeqpacketSocket.fromPairFd',
  'Memfd.fromFd',
  'EventFd.fromFd',
  'PidFd.fromFd',
]

/** Whether a function is a class (as opposed to a plain function). */
export function isClass(value: unknown): value is new (...args: never[]) => unknown {
  return typeof value === 'function' && /^class\b/.test(Function.prototype.toString.call(value))
}

/** Static members of a class that are functions. */
export function staticMethods(cls: object): string[] {
  return Object.getOwnPropertyNames(cls).filter(
    (n) =>
      !['length', 'name', 'prototype'].includes(n) &&
      typeof Object.getOwnPropertyDescriptor(cls, n)?.value === 'function',
  )
}

/**
 * Public instance methods of a class, own and inherited from ipckit base classes (keys may be
 * symbols, shown as `[Symbol.asyncIterator]`); getters are not methods.
 */
export function instanceMethods(cls: { prototype: object }): Array<string | symbol> {
  const seen = new Set<string | symbol>()
  for (
    let p: object | null = cls.prototype;
    p && !FOREIGN_BASES.includes(p.constructor.name);
    p = Object.getPrototypeOf(p)
  ) {
    for (const key of Reflect.ownKeys(p)) {
      const d = Object.getOwnPropertyDescriptor(p, key)!
      if (typeof d.value !== 'function') continue
      if (typeof key === 'string' && key in SKIPPED_MEMBERS) continue
      seen.add(key)
    }
  }
  return [...seen]
}

/** `Class#method` / `Class.static` / `function` label of a target. */
export function label(owner: string | undefined, key: string | symbol, isStatic = false): string {
  const name = typeof key === 'symbol' ? `[${key.description}]` : key
  if (owner === undefined) return name
  return `${owner}${isStatic ? '.' : '#'}${name}`
}
