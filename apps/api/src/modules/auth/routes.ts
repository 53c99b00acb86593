import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../deps.js';

/** Sign-in HTTP routes (OAuth redirects, dev sign-in, sign-out) under /api/v1. */
export async function authRoutes(app: FastifyInstance, _deps: AppDeps): Promise<void> {
  void app;
}
