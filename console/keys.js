// The prescriber's signing key: Ed25519 through WebCrypto, the private half non-extractable,
// kept in this browser's IndexedDB (one key per professional and organisation).

import { toBase64url } from './api.js';

const DB_NAME = 'prescrypt-console';
const STORE = 'signing-keys';

/** Whether this browser can hold a signing key here (WebCrypto needs a secure context). */
export function available() {
  return window.isSecureContext && Boolean(globalThis.crypto && crypto.subtle);
}

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transact(mode, act) {
  const db = await database();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = act(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

function ownerKey(claims) {
  return `${claims.org}/${claims.sub}`;
}

/** The stored key record of this professional: {privateKey, jwk, kid, created_at} or undefined. */
export function load(claims) {
  return transact('readonly', (store) => store.get(ownerKey(claims)));
}

export function save(claims, record) {
  return transact('readwrite', (store) => store.put(record, ownerKey(claims)));
}

export function forget(claims) {
  return transact('readwrite', (store) => store.delete(ownerKey(claims)));
}

/** A new key pair; the private key cannot be exported, the public one as a JWK {kty, crv, x}. */
export async function generate() {
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const exported = await crypto.subtle.exportKey('jwk', pair.publicKey);
  return {
    privateKey: pair.privateKey,
    jwk: { kty: exported.kty, crv: exported.crv, x: exported.x },
    kid: null,
    created_at: null,
  };
}

/** The Ed25519 signature of the ASCII bytes of `text`, BASE64URL without padding. */
export async function sign(privateKey, text) {
  const signature = await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, new TextEncoder().encode(text));
  return toBase64url(new Uint8Array(signature));
}
