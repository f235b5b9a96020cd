/**
 * ipckit: every classic Linux inter-process communication primitive for Node.js.
 *
 * @example
 * ```ts
 * import { MessageQueue, ftok } from 'ipckit'
 *
 * using q = MessageQueue.open(ftok('/tmp', 1), { create: true })
 * await q.send('hello')
 * console.log((await q.receive()).data.toString())
 * ```
 *
 * @module
 */

export { AbortError, IpcError } from './errors'
export type { CodedError, SystemErrorFields } from './errors'
export { IPC_PRIVATE, ftok } from './key'
export { MessageQueue } from './queue'
export type {
  Message,
  BigIntMessage,
  MessageQueueOpenOptions,
  MessageQueueStat,
  MessageQueueUpdate,
  MessagesOptions,
  Payload,
  ReceiveOptions,
  ReceiveSyncOptions,
  SendOptions,
  SendSyncOptions,
} from './queue'
export { ipcrm, ipcs, limits } from './ipcs'
export type {
  IpcType,
  IpcrmAll,
  IpcrmById,
  IpcrmByKey,
  IpcrmReport,
  IpcsEntry,
  IpcsEntryBase,
  IpcsOptions,
  Limits,
  LimitsOptions,
  MessageQueueEntry,
  SemaphoreSetEntry,
  SharedMemoryEntry,
} from './ipcs'
export { SEMAPHORE_VALUE_MAX, Semaphore, SemaphoreSet } from './semaphore'
export type {
  AcquireOptions,
  AcquireSyncOptions,
  SemaphoreOp,
  SemaphoreOpenOptions,
  SemaphoreSetOpenOptions,
  SemaphoreSetStat,
  SemaphoreSetUpdate,
  SemaphoreWaitOptions,
  SemaphoreWaitSyncOptions,
} from './semaphore'
export { Mutex, MutexGuard } from './mutex'
export type { LockSyncOptions, MutexOpenOptions } from './mutex'
export { MappedMemory, SharedMemory, SharedMemoryView, zeroCopySupported } from './shared-memory'
export type {
  AttachOptions,
  SharedMemoryCreateOptions,
  SharedMemoryOpenOptions,
  SharedMemoryStat,
  SharedMemoryUpdate,
  ShmData,
  ShmWaitOptions,
  ShmWaitResult,
  ShmWaitSyncOptions,
} from './shared-memory'
export { PosixMessageQueue, listPosixQueues, posixQueueLimits } from './posix-queue'
export type {
  ListPosixQueuesOptions,
  PosixMessage,
  PosixMessageQueueOpenOptions,
  PosixMessageQueueStat,
  PosixMessageQueueUpdate,
  PosixMessagesOptions,
  PosixQueueEntry,
  PosixQueueLimits,
  PosixQueueNotifyOptions,
  PosixReceiveOptions,
  PosixReceiveSyncOptions,
  PosixSendOptions,
  PosixSendSyncOptions,
} from './posix-queue'
export { POSIX_SEMAPHORE_VALUE_MAX, PosixSemaphore } from './posix-semaphore'
export type {
  PosixSemaphoreAcquireOptions,
  PosixSemaphoreAcquireSyncOptions,
  PosixSemaphoreOpenOptions,
} from './posix-semaphore'
export { PipeReadable, PipeWritable, mkfifo, openFifo, openFifoSync, pipe } from './pipe'
export type { OpenFifoOptions, Pipe } from './pipe'
export {
  MAX_FDS,
  UnixDatagramSocket,
  UnixSeqpacketServer,
  UnixSeqpacketSocket,
  peerCredentials,
  receiveFds,
  sendFds,
  socketpair,
} from './unix-socket'
export type {
  SocketBindOptions,
  Credentials,
  SocketListenOptions,
  PeerAddress,
  SocketAddress,
  SocketMessage,
  SocketOptions,
  SocketPairKind,
  SocketPairOptions,
  SocketReceiveOptions,
  SocketReceiveSyncOptions,
  SocketSendOptions,
  SocketSendSyncOptions,
  StreamChunk,
  StreamEnd,
} from './unix-socket'
export {
  SignalWatcher,
  describeSignal,
  ignoreSignal,
  kill,
  listSignals,
  realtimeSignals,
  restoreSignal,
  signalDisposition,
  sigqueue,
  watchSignals,
} from './signals'
export type {
  DefaultAction,
  SignalDescription,
  SignalDisposition,
  SignalEvent,
  SignalLike,
  WatchSignalsOptions,
} from './signals'
export { PosixSharedMemory } from './posix-shared-memory'
export type { PosixSharedMemoryOpenOptions, PosixSharedMemoryStat } from './posix-shared-memory'
export { Memfd, SNAPSHOT_SEALS } from './memfd'
export type { MemfdCreateOptions, MemfdFromFdOptions, Seal } from './memfd'
export { EventFd } from './eventfd'
export type {
  EventFdCreateOptions,
  EventFdReadOptions,
  EventFdReadSyncOptions,
  EventFdWriteOptions,
  EventFdWriteSyncOptions,
} from './eventfd'
export { PidFd } from './pidfd'
export type { PidFdWaitOptions, PidFdWaitSyncOptions, ProcessExit } from './pidfd'
export { Channel } from './channel'
export type {
  ChannelCreateOptions,
  ChannelData,
  ChannelReceiveOptions,
  ChannelReceiveSyncOptions,
  ChannelSendOptions,
  ChannelSendSyncOptions,
} from './channel'
