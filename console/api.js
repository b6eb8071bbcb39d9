// The service's JSON API as the console calls it: the bearer token of the session, and
// problem+json failures as `Problem` errors that carry the field they name.

const TOKEN_KEY = 'prescrypt.bearer';

/** A failure the service answered with (RFC 9457 problem details), or a network failure. */
export class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || null;
    this.field = body.field || null;
  }
}

export function bearer() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setBearer(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The claims of a JWT (unverified: the service verifies; the console only shows them). */
export function claimsOf(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('a bearer token has three parts separated by dots');
  const text = new TextDecoder().decode(fromBase64url(parts[1]));
  const claims = JSON.parse(text);
  if (typeof claims.sub !== 'string' || typeof claims.org !== 'string') {
    throw new Error('the token names no professional (sub) or organisation (org)');
  }
  return claims;
}

export function fromBase64url(text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

export function toBase64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A random version-4 UUID (crypto.randomUUID exists only in a secure context). */
function randomKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Calls the API. `body` (if any) is sent as JSON; a POST carries a fresh Idempotency-Key unless
 * one is given (a retry of the same action passes the same key). Resolves to the Response when
 * it is 2xx, else throws a Problem.
 */
export async function call(method, path, { body, idempotencyKey } = {}) {
  const headers = { Accept: 'application/json' };
  const token = bearer();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method === 'POST') headers['Idempotency-Key'] = idempotencyKey || randomKey();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (error) {
    throw new Problem(0, { detail: `The service cannot be reached (${error.message}).` });
  }
  if (response.ok) return response;
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    problem = { detail: `${response.status} ${response.statusText}` };
  }
  throw new Problem(response.status, problem);
}

export async function json(method, path, options) {
  return (await call(method, path, options)).json();
}
