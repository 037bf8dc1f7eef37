import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A self-signed certificate for `localhost` and 127.0.0.1, and its key, in PEM. */
export interface SelfSignedCertificate {
  key: string;
  cert: string;
}

/**
 * Makes a self-signed certificate with the `openssl` CLI in a temporary directory (removed
 * before returning), valid for a day for `DNS:localhost` and `IP:127.0.0.1`. Each call makes a
 * new key: two calls give two certificates that do not trust each other.
 *
 * @example
 * ```ts
 * const { key, cert } = selfSignedCertificate();
 * const broker = await WebSocketBroker.listen({ auth, tls: { key, cert } });
 * await connectParticipant({ url: broker.url, tls: { ca: cert }, ... });
 * ```
 */
export function selfSignedCertificate(commonName = 'localhost'): SelfSignedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'sagachart-tls-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
