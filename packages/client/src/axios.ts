import type { AxiosError, AxiosInstance, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import type { RequestAuth, RotorClient } from './client.js';
import { shouldRetry } from './errors.js';

type RotorConfig = InternalAxiosRequestConfig & {
  _rotorAuth?: RequestAuth;
  _rotorRetried?: boolean;
  _rotorNonced?: boolean;
};

/** An axios answer as the DPoP nonce check reads it (its headers are `AxiosHeaders` at run time). */
function answerOf({ status, headers }: AxiosResponse) {
  const get = (name: string): unknown =>
    headers instanceof Object && 'get' in headers && typeof headers.get === 'function'
      ? (headers.get as (name: string) => unknown).call(headers, name)
      : (headers as Record<string, unknown>)[name];
  return { status, headers: { get } };
}

/**
 * Makes an axios instance send Rotor's access token (as `DPoP` with a fresh proof when the session
 * is bound, else `Bearer`) and, on `401 token_expired` or `invalid_token`, refresh once (unless a
 * newer token has arrived since the request was sent) and retry once, sharing the client's
 * single-flight refresh; on `use_dpop_nonce`, send once more with the server's nonce. axios is an
 * optional peer: only its types are imported here.
 * @example attachRotor(axios.create({ baseURL: '/api' }), rotor)
 */
export function attachRotor<T extends AxiosInstance>(instance: T, client: RotorClient): T {
  const method = (config: RotorConfig) => (config.method ?? 'get').toUpperCase();
  instance.interceptors.request.use(async (config: RotorConfig) => {
    const auth = await client.authorize();
    const headers = await auth.headers(method(config), instance.getUri(config));
    for (const [name, value] of Object.entries(headers)) config.headers.set(name, value);
    // Kept with the request: its 401 then knows which token was refused (see `client.fetch`).
    config._rotorAuth = auth;
    return config;
  });
  instance.interceptors.response.use(
    (response: AxiosResponse) => {
      // Keeps the server's latest DPoP nonce for the next proof.
      const config = response.config as RotorConfig;
      config._rotorAuth?.answered(instance.getUri(config), answerOf(response));
      return response;
    },
    async (error: AxiosError) => {
      const config = error.config as RotorConfig | undefined;
      const code = (error.response?.data as { error?: unknown } | undefined)?.error;
      if (!config?._rotorAuth || !error.response) throw error;
      // RFC 9449 §8, §9: a nonce asked for, the request goes once more with it.
      if (
        config._rotorAuth.answered(instance.getUri(config), answerOf(error.response), code) &&
        !config._rotorNonced
      ) {
        config._rotorNonced = true;
        return instance.request(config);
      }
      // The rule `client.fetch` keeps too: shouldRetry.
      if (config._rotorRetried || !shouldRetry(error.response.status, code)) throw error;
      const refusal = { code, method: method(config), url: instance.getUri(config) };
      if (!(await config._rotorAuth.refused(refusal))) throw error;
      config._rotorRetried = true;
      return instance.request(config);
    },
  );
  return instance;
}
