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
