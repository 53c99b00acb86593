import {
  ArcticFetchError,
  CodeChallengeMethod,
  generateCodeVerifier,
  generateState,
  OAuth2Client,
  OAuth2RequestError,
} from 'arctic';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import type { ApiConfig } from '../../config.js';

export const GOOGLE_CALLBACK_PATH = '/api/v1/oauth/google/callback';
const SCOPES = ['openid', 'email', 'profile'];
const GOOGLE_ISSUER = 'https://accounts.google.com';

/** Why a Google sign-in did not complete; each has a page explaining it (see signin-errors.ts). */
export type SignInFailure =
  | 'access_denied'
  | 'invalid_state'
  | 'invalid_code'
  | 'invalid_token'
  | 'unverified_email'
  | 'account_conflict'
  | 'provider_error'
  | 'provider_refused'
  | 'provider_unavailable';

export class SignInError extends Error {
  constructor(
    readonly reason: SignInFailure,
    detail: string,
  ) {
    super(detail);
  }
}

export interface GoogleProfile {
  sub: string;
  email: string;
  name: string | null;
  picture: string | null;
}

const idTokenClaims = z.object({
  sub: z.string().min(1),
  email: z.email(),
  // Google sends a boolean; some older tokens carried the string "true".
  email_verified: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional(),
  name: z.string().optional(),
  picture: z.url().optional(),
});

export interface GoogleSignIn {
  /** A fresh state and PKCE verifier, and the consent-screen URL that carries them. */
  start(): { url: URL; state: string; codeVerifier: string };
  /** Exchanges the code (with the verifier) and returns the verified Google profile. */
  finish(code: string, codeVerifier: string): Promise<GoogleProfile>;
}

/**
 * Google sign-in through arctic's generic OAuth2Client (arctic's `Google` class hardcodes
 * Google's URLs; ours come from config so tests can use a fake). The ID token is verified
 * here against the JWKS, issuer, audience and expiry, never trusted as decoded.
 */
export function createGoogleSignIn(config: ApiConfig): GoogleSignIn {
  const clientId = config.GOOGLE_CLIENT_ID!;
  const client = new OAuth2Client(
    clientId,
    config.GOOGLE_CLIENT_SECRET!,
    config.PUBLIC_URL.replace(/\/+$/, '') + GOOGLE_CALLBACK_PATH,
  );
  const jwks = createRemoteJWKSet(new URL(config.GOOGLE_JWKS_URL));
  // Google documents both spellings of its issuer.
  const issuers =
    config.GOOGLE_ISSUER === GOOGLE_ISSUER ? [GOOGLE_ISSUER, 'accounts.google.com'] : [config.GOOGLE_ISSUER];

  return {
    start() {
      const state = generateState();
      const codeVerifier = generateCodeVerifier();
      const url = client.createAuthorizationURLWithPKCE(
        config.GOOGLE_AUTH_URL,
        state,
        CodeChallengeMethod.S256,
        codeVerifier,
        SCOPES,
      );
      url.searchParams.set('prompt', 'select_account');
      return { url, state, codeVerifier };
    },

    async finish(code, codeVerifier) {
      let idToken: string;
      try {
        const tokens = await client.validateAuthorizationCode(config.GOOGLE_TOKEN_URL, code, codeVerifier);
        idToken = tokens.idToken();
      } catch (error) {
        if (error instanceof OAuth2RequestError) {
          if (error.code === 'invalid_grant')
            throw new SignInError('invalid_code', `token endpoint: ${error.code} ${error.description ?? ''}`);
          throw new SignInError('provider_error', `token endpoint: ${error.code} ${error.description ?? ''}`);
        }
        if (error instanceof ArcticFetchError)
          throw new SignInError('provider_unavailable', `token endpoint unreachable: ${String(error.cause)}`);
        throw new SignInError(
          'provider_error',
          `token endpoint: ${error instanceof Error ? error.message : String(error)}`,
        );
      }

      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(idToken, jwks, {
          issuer: issuers,
          audience: clientId,
          algorithms: ['RS256'],
          clockTolerance: 30,
        }));
      } catch (error) {
        // A JWKS we could not fetch is Google being unreachable, not a bad token.
        const unreachable = error instanceof joseErrors.JWKSTimeout || !(error instanceof joseErrors.JOSEError);
        throw new SignInError(
          unreachable ? 'provider_unavailable' : 'invalid_token',
          `id token: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      const claims = idTokenClaims.safeParse(payload);
      if (!claims.success)
        throw new SignInError('invalid_token', `id token claims: ${claims.error.issues[0]?.message}`);
      if (claims.data.email_verified !== true)
        throw new SignInError('unverified_email', `unverified e-mail ${claims.data.email}`);
      return {
        sub: claims.data.sub,
        email: claims.data.email,
        name: claims.data.name ?? null,
        picture: claims.data.picture ?? null,
      };
    },
  };
}
