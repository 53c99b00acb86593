import { CSRF_HEADERS } from './trpc.js';

/** The sign-in HTTP routes of the API (outside tRPC: they set and clear the session cookie). */
export interface AuthConfig {
  google: boolean;
  devLogin: boolean;
}

export const GOOGLE_LOGIN_URL = '/api/v1/oauth/google/login';

async function readJson(response: Response): Promise<Record<string, unknown>> {
  try {
    return (await response.json()) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export async function fetchAuthConfig(): Promise<AuthConfig> {
  const response = await fetch('/api/v1/auth/config', { headers: CSRF_HEADERS });
  if (!response.ok) throw new Error('Sign-in options are unavailable right now.');
  const body = await readJson(response);
  return { google: body.google === true, devLogin: body.devLogin === true };
}

export class SignInFailed extends Error {
  override readonly name = 'SignInFailed';
}

export async function devLogin(email: string): Promise<void> {
  const response = await fetch('/api/v1/auth/dev-login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...CSRF_HEADERS },
    body: JSON.stringify({ email }),
  });
  if (!response.ok) {
    const body = await readJson(response);
    throw new SignInFailed(typeof body.message === 'string' ? body.message : 'Sign-in failed. Please try again.');
  }
}

export async function logout(): Promise<void> {
  await fetch('/api/v1/auth/logout', { method: 'POST', headers: CSRF_HEADERS });
}
