import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** A person at the test IdP: the claims it asserts and the methods it reports in `amr`. */
export interface IdpAccount {
  email: string;
  name: string;
  /** the groups claim: a list or a space/comma separated string */
  groups?: string[] | string;
  tenant?: string;
  amr?: string[];
  /** Entra-style: the groups reach only the userinfo endpoint, not the ID token */
  groupsOnlyInUserinfo?: boolean;
  /** the `email_verified` claim (default true) */
  emailVerified?: boolean;
  /** no `email` claim at all (Entra ID often sends none): the address then comes from preferred_username/upn */
  noEmailClaim?: boolean;
  preferredUsername?: string;
  upn?: string;
}

export interface TestIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Accounts by subject; change them between logins (groups, amr …). */
  accounts: Map<string, IdpAccount>;
  /**
   * Plays the browser at the IdP: follows the authorization URL through the
   * (non-interactive) login of `subject` until the IdP redirects to a URL
   * starting with `stopAt`; returns that URL (the callback with code and state).
   */
  authorize(authorizationUrl: string, subject: string, stopAt: string): Promise<URL>;
  close(): Promise<void>;
}

/**
 * A real OpenID provider (oidc-provider) on 127.0.0.1 and a random port. Its
 * interaction is a tiny handler instead of a login form: it signs in the
 * account `authorize` was asked for, with that account's `amr`, and grants
 * the requested scopes (no consent screen: like a first-party enterprise IdP).
 */
export async function startTestIdp(opts: { redirectUri: string; clientId?: string; clientSecret?: string }): Promise<TestIdp> {
  const clientId = opts.clientId ?? 'ernstfall';
  const clientSecret = opts.clientSecret ?? randomBytes(24).toString('base64url');
  const accounts = new Map<string, IdpAccount>();
  // which subject the next interaction signs in: keyed by the authorization request's state
  const pending = new Map<string, string>();

  const interact = async (req: IncomingMessage, res: ServerResponse) => {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      const sub = pending.get(String(details.params.state));
      const acc = sub ? accounts.get(sub) : undefined;
      if (!sub || !acc) {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'unknown test account' }, { mergeWithLastSubmission: false });
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: sub, amr: acc.amr, remember: false } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = details.grantId ? (await provider.Grant.find(details.grantId))! : new provider.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id });
    if (details.prompt.details.missingOIDCScope) grant.addOIDCScope(details.prompt.details.missingOIDCScope.join(' '));
    if (details.prompt.details.missingOIDCClaims) grant.addOIDCClaims(details.prompt.details.missingOIDCClaims);
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  };

  const server = createServer((req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      interact(req, res).catch((err: Error) => {
        res.statusCode = 500;
        res.end(`interaction failed: ${err.message}`);
      });
      return;
    }
    provider.callback()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider: Provider = new Provider(issuer, {
    clients: [{
      client_id: clientId, client_secret: clientSecret, redirect_uris: [opts.redirectUri],
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [{ ...key, kid: 'test-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    // amr always in the ID token (as Entra ID and Keycloak's AMR mapper do), not only when asked for with the claims parameter
    claims: { acr: null, amr: null, sid: null, auth_time: null, iss: null, openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name', 'groups', 'tenant', 'preferred_username', 'upn'] },
    // like Keycloak: the scope's claims in the ID token too, not only at userinfo
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx: unknown, sub: string) {
      const acc = accounts.get(sub);
      if (!acc) return undefined;
      return {
        accountId: sub,
        async claims(use: string) {
          const groups = acc.groupsOnlyInUserinfo && use === 'id_token' ? undefined : acc.groups;
          return {
            sub, ...(!acc.noEmailClaim && { email: acc.email, email_verified: acc.emailVerified ?? true }), name: acc.name, ...(groups !== undefined && { groups }), ...(acc.tenant && { tenant: acc.tenant }),
            ...(acc.preferredUsername && { preferred_username: acc.preferredUsername }), ...(acc.upn && { upn: acc.upn }),
          };
        },
      };
    },
  });

  return {
    issuer, clientId, clientSecret, accounts,
    async authorize(authorizationUrl, subject, stopAt) {
      const jar = new Map<string, string>();
      let url = new URL(authorizationUrl);
      pending.set(url.searchParams.get('state') ?? '', subject);
      for (let hop = 0; hop < 12; hop++) {
        const res = await fetch(url, {
          redirect: 'manual',
          headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
          signal: AbortSignal.timeout(10_000),
        });
        for (const c of res.headers.getSetCookie()) {
          const pair = c.split(';')[0]!;
          const i = pair.indexOf('=');
          const [name, value] = [pair.slice(0, i).trim(), pair.slice(i + 1).trim()];
          if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(name);
          else jar.set(name, value);
        }
        const location = res.headers.get('location');
        if (!location) throw new Error(`IdP answered ${res.status} without a redirect: ${(await res.text()).slice(0, 500)}`);
        url = new URL(location, url);
        if (url.href.startsWith(stopAt)) return url;
      }
      throw new Error('IdP redirected too often');
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
