import { createTRPCClient, createWSClient, httpLink, wsLink, type TRPCClient } from '@trpc/client';
import superjson from 'superjson';
import WebSocket from 'ws';
import type { GenerationParams, JobEvent } from '@pingvas/core';
import {
  invoiceObject,
  orderObject,
  signLemonSqueezyBody,
  subscriptionObject,
  webhookBody,
  type WebhookEvent,
} from '@pingvas/testkit';
import type { AppRouter } from '../../apps/api/src/app.router.js';
import { VARIANT, WEBHOOK_SECRET, type Cluster } from './cluster.js';
import type { Random } from './random.js';

/**
 * The users' side of the chaos run: sign-ins through the dev form, payments through signed
 * webhooks (checkouts, renewals, pack purchases; some delivered twice), a stream of creates
 * of mixed sizes and models (some carrying an engine fault, some cancelled while pending or
 * running), and WebSocket watchers on many jobs that reconnect to a live API when theirs dies.
 */

type Tier = 'free' | 'starter' | 'pro';
type Client = TRPCClient<AppRouter>;
export type FaultKind = 'oom' | 'abort' | 'hang';

export interface ChaosUser {
  index: number;
  id: string;
  email: string;
  token: string;
  tier: Tier;
  subscriptionId: number | null;
  clients: Map<string, Client>;
}

export interface TrackedJob {
  jobId: string;
  userId: string;
  fault: FaultKind | null;
  cancel: boolean;
  watcher: Watcher | null;
}

export interface Watcher {
  events: JobEvent[];
  /** The subscription ended after a terminal event. */
  ended: boolean;
}

export interface TrafficStats {
  createsSent: number;
  createErrors: number;
  paymentRequired: number;
  cancelsSent: number;
  webhooksDelivered: number;
  webhookRetries: number;
}

const SIDES = [256, 320, 384, 448, 512] as const;
const MODELS = ['sd15', 'sdxl'] as const;
const SUBJECTS = ['a lighthouse at dusk', 'a fox in the snow', 'a city of glass', 'an old harbour', 'a quiet forest'];

export class Traffic {
  readonly users: ChaosUser[] = [];
  readonly jobs = new Map<string, TrackedJob>();
  readonly stats: TrafficStats = {
    createsSent: 0,
    createErrors: 0,
    paymentRequired: 0,
    cancelsSent: 0,
    webhooksDelivered: 0,
    webhookRetries: 0,
  };
  /** Why creates failed (message → count), for the report. */
  readonly createErrorReasons = new Map<string, number>();
  private readonly wsClients: { close(): void }[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private nextProviderId = 1;
  private faultIds = 0;
  stopped = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly random: Random,
  ) {}

  private liveApi() {
    const live = this.cluster.liveApis();
    return this.random.pick(live.length > 0 ? live : this.cluster.apis);
  }

  /** Keeps a promise in flight until it settles; `drain` waits for all of them. */
  private track<T>(promise: Promise<T>): void {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  // ---- users and payments --------------------------------------------------------------

  /** Signs in `count` users through the dev form; a third each free, starter and pro (paid by webhooks). */
  async signIn(count: number): Promise<void> {
    const tiers: Tier[] = ['free', 'starter', 'pro'];
    for (let index = 0; index < count; index += 1) {
      const email = `chaos-${index}@chaos.test`;
      const response = await this.retry(() =>
        fetch(`${this.liveApi().url}/api/v1/auth/dev-login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email }),
        }).then((r) => (r.ok ? r : Promise.reject(new Error(`dev-login ${r.status}`)))),
      );
      const token = /pingvas_session=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1];
      const me = (await response.json()) as { id: string };
      if (!token) throw new Error('dev-login set no session cookie');
      this.users.push({
        index,
        id: me.id,
        email,
        token,
        tier: tiers[index % tiers.length]!,
        subscriptionId: null,
        clients: new Map(),
      });
    }
    await Promise.all(
      this.users.map(async (user) => {
        if (user.tier === 'free') await this.buyPack(user);
        else await this.subscribe(user);
      }),
    );
  }

  private providerId(): number {
    this.nextProviderId += 1;
    return 5_000_000 + this.nextProviderId;
  }

  /** Sends one webhook to a live API as the provider does: retried until it is taken (200). */
  async deliver(event: WebhookEvent): Promise<void> {
    const body = webhookBody(event);
    const headers = {
      'content-type': 'application/json',
      'x-event-name': event.name,
      'x-signature': signLemonSqueezyBody(WEBHOOK_SECRET, body),
    };
    const deadline = Date.now() + 120_000;
    for (;;) {
      const status = await fetch(`${this.liveApi().url}/api/v1/webhooks/lemon-squeezy`, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(10_000),
      }).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) break;
      if (Date.now() > deadline) throw new Error(`webhook ${event.name} not taken (last status ${status})`);
      this.stats.webhookRetries += 1;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    this.stats.webhooksDelivered += 1;
    // Providers deliver twice now and then; the second must change nothing.
    if (this.random.chance(0.15)) {
      await fetch(`${this.liveApi().url}/api/v1/webhooks/lemon-squeezy`, { method: 'POST', headers, body }).catch(
        () => undefined,
      );
    }
  }

  private async subscribe(user: ChaosUser): Promise<void> {
    const tier = user.tier as 'starter' | 'pro';
    const id = this.providerId();
    user.subscriptionId = id;
    const now = new Date();
    const custom = { user_id: user.id, kind: 'subscription', tier };
    const subscription = (name: string): WebhookEvent => ({
      name,
      custom,
      data: subscriptionObject({
        id,
        orderId: id + 1,
        variantId: VARIANT[tier],
        email: user.email,
        createdAt: now,
        updatedAt: now,
      }),
    });
    await this.deliver(subscription('subscription_created'));
    await this.deliver(subscription('subscription_updated'));
    await this.deliver({
      name: 'order_created',
      custom,
      data: orderObject({
        id: this.providerId(),
        variantId: VARIANT[tier],
        email: user.email,
        totalCents: 2000,
        updatedAt: now,
      }),
    });
    await this.deliver({
      name: 'subscription_payment_success',
      data: invoiceObject({
        id: this.providerId(),
        subscriptionId: id,
        billingReason: 'initial',
        email: user.email,
        totalCents: 2000,
        updatedAt: now,
      }),
    });
  }

  /** A paid renewal: the subscription's credits reset to the plan's allocation. */
  async renew(user: ChaosUser): Promise<void> {
    if (user.subscriptionId === null) return;
    const tier = user.tier as 'starter' | 'pro';
    const now = new Date();
    await this.deliver({
      name: 'subscription_payment_success',
      data: invoiceObject({
        id: this.providerId(),
        subscriptionId: user.subscriptionId,
        billingReason: 'renewal',
        email: user.email,
        totalCents: 2000,
        updatedAt: now,
      }),
    });
    await this.deliver({
      name: 'subscription_updated',
      custom: { user_id: user.id, kind: 'subscription', tier },
      data: subscriptionObject({
        id: user.subscriptionId,
        orderId: user.subscriptionId + 1,
        variantId: VARIANT[tier],
        email: user.email,
        createdAt: new Date(now.getTime() - 60_000),
        updatedAt: now,
        renewsAt: new Date(now.getTime() + 30 * 86_400_000),
      }),
    });
  }

  async buyPack(user: ChaosUser): Promise<void> {
    const pack = this.random.pick([1000, 5000, 10000] as const);
    await this.deliver({
      name: 'order_created',
      custom: { user_id: user.id, kind: 'credits', pack: String(pack) },
      data: orderObject({
        id: this.providerId(),
        variantId: VARIANT[pack],
        email: user.email,
        totalCents: 1000,
        updatedAt: new Date(),
      }),
    });
  }

  /** One payment event of the stream: a renewal for a subscriber, else a pack. */
  payment(): void {
    const user = this.random.pick(this.users);
    this.track(user.subscriptionId !== null && this.random.chance(0.5) ? this.renew(user) : this.buyPack(user));
  }

  // ---- jobs -----------------------------------------------------------------------------

  private client(user: ChaosUser): Client {
    const api = this.liveApi();
    let client = user.clients.get(api.url);
    if (!client) {
      client = createTRPCClient<AppRouter>({
        links: [
          httpLink({
            url: `${api.url}/trpc`,
            transformer: superjson,
            headers: { authorization: `Bearer ${user.token}` },
          }),
        ],
      });
      user.clients.set(api.url, client);
    }
    return client;
  }

  private params(): GenerationParams {
    const side = () => this.random.pick(SIDES);
    let prompt = `${this.random.pick(SUBJECTS)} #${this.random.int(1, 1_000_000)}`;
    if (this.random.chance(0.08)) {
      const kind = this.random.pick(['oom', 'abort', 'hang'] as const);
      // A hang costs the engine timeout on every run: those fault only once.
      const mode = kind !== 'hang' && this.random.chance(0.3) ? 'always' : 'once';
      this.faultIds += 1;
      prompt += ` [fault:${kind}:${mode}:f${this.faultIds}]`;
    }
    return {
      prompt,
      model: this.random.pick(MODELS),
      width: side(),
      height: side(),
      steps: this.random.int(4, 16),
      cfgScale: 7,
    };
  }

  /** One create of the stream, by a random user; some are watched, some cancelled later. */
  create(): void {
    const user = this.random.pick(this.users);
    const params = this.params();
    const fault = (/\[fault:(oom|abort|hang):/.exec(params.prompt)?.[1] ?? null) as FaultKind | null;
    // 6 % are cancelled 0–2.5 s after create (mostly still queued), 6 % once they start running.
    const cancel = this.random.chance(0.12) ? this.random.pick(['soon', 'running'] as const) : null;
    const cancelAfterMs = this.random.int(0, 2500);
    const watch = cancel === 'running' || this.random.chance(0.6);
    this.stats.createsSent += 1;
    this.track(
      (async () => {
        let jobId: string;
        try {
          ({ jobId } = await this.client(user).generation.create.mutate(params, {
            signal: AbortSignal.timeout(15_000),
          }));
        } catch (error) {
          if ((error as { data?: { httpStatus?: number } }).data?.httpStatus === 402) this.stats.paymentRequired += 1;
          else {
            this.stats.createErrors += 1;
            const reason = (error as Error).message.slice(0, 80);
            this.createErrorReasons.set(reason, (this.createErrorReasons.get(reason) ?? 0) + 1);
          }
          return;
        }
        const job: TrackedJob = { jobId, userId: user.id, fault, cancel: cancel !== null, watcher: null };
        this.jobs.set(jobId, job);
        let started: Promise<void> = Promise.resolve();
        if (watch) {
          let onStart = () => {};
          started = new Promise((resolve) => {
            onStart = resolve;
          });
          job.watcher = this.watch(user, jobId, onStart);
        }
        if (cancel !== null) {
          await (cancel === 'running' ? started : new Promise((resolve) => setTimeout(resolve, cancelAfterMs)));
          await this.retry(
            () => this.client(user).generation.cancel.mutate({ jobId }, { signal: AbortSignal.timeout(10_000) }),
            5,
          );
          this.stats.cancelsSent += 1;
        }
      })(),
    );
  }

  private async retry<T>(attempt: () => Promise<T>, times = 50): Promise<T> {
    for (let i = 0; ; i += 1) {
      try {
        return await attempt();
      } catch (error) {
        if (i >= times) throw error;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
  }

  // ---- watchers ----------------------------------------------------------------------------

  private wsClientFor(user: ChaosUser): Client {
    const key = 'ws';
    let client = user.clients.get(key);
    if (!client) {
      const token = user.token;
      class BearerWebSocket extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols, { headers: { authorization: `Bearer ${token}` } });
        }
      }
      const wsClient = createWSClient({
        // Each (re)connect goes to an API that is alive now.
        url: () => `${this.liveApi().url.replace('http', 'ws')}/trpc`,
        WebSocket: BearerWebSocket as unknown as typeof globalThis.WebSocket,
        retryDelayMs: () => 500,
      });
      this.wsClients.push(wsClient);
      client = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient, transformer: superjson })] });
      user.clients.set(key, client);
    }
    return client;
  }

  /**
   * Follows a job until its subscription ends after a terminal event; errors subscribe again.
   * `onStart` is called when the job is first seen running, or has ended (nothing left to catch).
   */
  private watch(user: ChaosUser, jobId: string, onStart: () => void): Watcher {
    const watcher: Watcher = { events: [], ended: false };
    const subscribe = () => {
      this.wsClientFor(user).generation.onJob.subscribe(
        { jobId },
        {
          onData: (data) => {
            const event = data as JobEvent;
            watcher.events.push(event);
            const waiting = event.type === 'queued' || (event.type === 'snapshot' && event.status === 'pending');
            if (!waiting) onStart();
          },
          onComplete: () => {
            watcher.ended = true;
            onStart();
          },
          onError: () => {
            setTimeout(() => {
              if (!watcher.ended && !this.closed) subscribe();
            }, 500);
          },
        },
      );
    };
    subscribe();
    return watcher;
  }

  private closed = false;

  close(): void {
    this.closed = true;
    for (const client of this.wsClients) client.close();
  }
}
