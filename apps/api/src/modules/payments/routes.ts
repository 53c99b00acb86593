import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../deps.js';

/** The Lemon Squeezy webhook and the local test checkout, under /api/v1. */
export async function paymentRoutes(app: FastifyInstance, _deps: AppDeps): Promise<void> {
  void app;
}
