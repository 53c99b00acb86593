import type { JobEvent } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import type { Redis } from '../../infra/redis.js';

/**
 * Redis pub/sub for one API process: ONE subscriber connection, fanned out in memory to
 * every local listener (WebSocket subscriptions, long-polling claims). Any process may
 * publish; every process hears it, so any replica serves any subscriber.
 */

/** What travels on a job's channel: the event and the job row's version after it. */
export interface JobEnvelope {
  /** updated_at of the job row in microseconds since the epoch; strictly grows per job. */
  v: number;
  e: JobEvent;
}

export async function publishJobEvent(deps: AppDeps, version: number, event: JobEvent): Promise<void> {
  const envelope: JobEnvelope = { v: version, e: event };
  await deps.redis.publish(deps.keys.jobChannel(event.jobId), JSON.stringify(envelope));
}

/** A message, or null after the subscriber reconnected: messages may have been lost, re-read the state. */
type Listener = (message: string | null) => void;

export class Bus {
  private readonly subscriber: Redis;
  private readonly connected: Promise<void>;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly pending = new Map<string, Promise<unknown>>();
  private wakeups = 0;
  private sleepers = new Set<() => void>();
  private wakeupReady: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly deps: AppDeps) {
    // Connected before the first SUBSCRIBE: one sent while connecting races ioredis's ready
    // check (INFO), which Redis then refuses in subscriber mode, dropping the connection.
    // autoResubscribe is off: ioredis would announce 'ready' before its SUBSCRIBEs land, and a
    // listener re-reading its job in that gap could miss an event published meanwhile for good.
    this.subscriber = deps.redis.duplicate({ enableAutoPipelining: false, lazyConnect: true, autoResubscribe: false });
    this.connected = this.subscriber
      .connect()
      .catch((err: unknown) => deps.logger.error({ err }, 'redis subscriber failed to connect'));
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === deps.keys.queueWakeup) {
        this.wakeups += 1;
        this.wakeAll();
        return;
      }
      for (const listener of this.listeners.get(channel) ?? []) listener(message);
    });
    // A dropped subscriber (Redis restarted, network cut) misses messages: once it is back and
    // subscribed again, wake every sleeper and tell every listener to re-read what it follows.
    let connectedBefore = false;
    this.subscriber.on('ready', () => {
      if (connectedBefore) void this.resubscribe();
      connectedBefore = true;
    });
    this.subscriber.on('error', (err: unknown) => deps.logger.warn({ err }, 'redis subscriber error'));
  }

  private async resubscribe(): Promise<void> {
    const channels = [...this.listeners.keys()];
    if (this.wakeupReady) channels.push(this.deps.keys.queueWakeup);
    try {
      if (channels.length > 0) await this.subscriber.subscribe(...channels);
    } catch (err) {
      // Dropped again before the SUBSCRIBE landed: the next 'ready' tries again.
      this.deps.logger.warn({ err }, 'redis subscriber could not resubscribe');
      return;
    }
    this.wakeAll();
    for (const set of this.listeners.values()) for (const listener of set) listener(null);
  }

  /**
   * Listens on `channel`; resolves once Redis confirmed the subscription (throws, listening to
   * nothing, if it could not). Returns the unsubscribe.
   */
  async listen(channel: string, listener: Listener): Promise<() => Promise<void>> {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    let subscribed = this.pending.get(channel);
    if (!subscribed) {
      const attempt = this.connected.then(() => this.subscriber.subscribe(channel));
      // A failed SUBSCRIBE is forgotten, so the next listener of the channel tries again.
      attempt.catch(() => {
        if (this.pending.get(channel) === attempt) this.pending.delete(channel);
      });
      this.pending.set(channel, attempt);
      subscribed = attempt;
    }
    const channelSet = set;
    const unsubscribe = async () => {
      channelSet.delete(listener);
      if (channelSet.size === 0 && this.listeners.get(channel) === channelSet) {
        this.listeners.delete(channel);
        this.pending.delete(channel);
        if (!this.closed) await this.subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
    try {
      await subscribed;
    } catch (err) {
      await unsubscribe();
      throw err;
    }
    return unsubscribe;
  }

  /** A counter of queue wake-ups heard; compare before and after a claim attempt. */
  async wakeupCounter(): Promise<number> {
    if (!this.wakeupReady) {
      const channel = this.deps.keys.queueWakeup;
      const attempt = this.connected.then(() => this.subscriber.subscribe(channel)).then(() => undefined);
      attempt.catch(() => {
        if (this.wakeupReady === attempt) this.wakeupReady = null;
      });
      this.wakeupReady = attempt;
    }
    await this.wakeupReady;
    return this.wakeups;
  }

  /**
   * Resolves when a wake-up arrives after `seen` (at once if one already has), after `ms`,
   * on abort, or when the bus closes.
   */
  waitForWakeup(seen: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.wakeups !== seen || this.closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private wakeAll(): void {
    for (const sleeper of [...this.sleepers]) sleeper();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wakeAll();
    this.subscriber.disconnect();
  }
}

const buses = new WeakMap<AppDeps, Bus>();

/** The process's bus for these deps; it closes itself when the main Redis connection ends. */
export function busFor(deps: AppDeps): Bus {
  let bus = buses.get(deps);
  if (!bus || bus.isClosed) {
    const created = new Bus(deps);
    deps.redis.once('end', () => created.close());
    buses.set(deps, created);
    bus = created;
  }
  return bus;
}

/** Closes this process's bus, if any: long-polling claims return at once (server shutdown). */
export function closeBus(deps: AppDeps): void {
  buses.get(deps)?.close();
}
