/**
 * An environment with every setting production requires, none of them a development default:
 * the start-refusal tests take one setting away at a time.
 */
export const PRODUCTION_ENV: Record<string, string> = {
  PUBLIC_URL: 'https://studio.example.com',
  SESSION_SECRET: 's'.repeat(32),
  WORKER_TOKEN: 'w'.repeat(32),
  GOOGLE_CLIENT_ID: 'client-id.apps.googleusercontent.com',
  GOOGLE_CLIENT_SECRET: 'google-client-secret',
  LEMONSQUEEZY_API_KEY: 'lemonsqueezy-api-key',
  LEMONSQUEEZY_STORE_ID: '1',
  LEMONSQUEEZY_WEBHOOK_SECRET: 'lemonsqueezy-webhook-secret',
  LEMONSQUEEZY_VARIANT_STARTER: '11',
  LEMONSQUEEZY_VARIANT_PRO: '12',
  LEMONSQUEEZY_VARIANT_PACK_1000: '13',
  LEMONSQUEEZY_VARIANT_PACK_5000: '14',
  LEMONSQUEEZY_VARIANT_PACK_10000: '15',
  METRICS_TOKEN: 'm'.repeat(32),
  S3_ENDPOINT: 'https://s3.example.com',
  S3_ACCESS_KEY_ID: 'access-key-id',
  S3_SECRET_ACCESS_KEY: 'secret-access-key',
};
