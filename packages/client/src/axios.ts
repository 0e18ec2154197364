import type { AxiosError, AxiosInstance, InternalAxiosRequestConfig } from 'axios';
import type { RequestAuth, RotorClient } from './client.js';
import { shouldRetry } from './errors.js';

type RotorConfig = InternalAxiosRequestConfig & {
  _rotorAuth?: RequestAuth;
  _rotorRetried?: boolean;
};

/**
 * Makes an axios instance send Rotor's access token and, on `401 token_expired` or `invalid_token`,
 * refresh once (unless a newer token has arrived since the request was sent) and retry once,
 * sharing the client's single-flight refresh. axios is an optional peer: only its types are
 * imported here.
 * @example attachRotor(axios.create({ baseURL: '/api' }), rotor)
 */
export function attachRotor<T extends AxiosInstance>(instance: T, client: RotorClient): T {
  instance.interceptors.request.use(async (config: RotorConfig) => {
    const auth = await client.authorize();
    if (auth.token) config.headers.set('Authorization', `Bearer ${auth.token}`);
    // Kept with the request: its 401 then knows which token was refused (see `client.fetch`).
    config._rotorAuth = auth;
    return config;
  });
  instance.interceptors.response.use(undefined, async (error: AxiosError) => {
    const config = error.config as RotorConfig | undefined;
    const code = (error.response?.data as { error?: unknown } | undefined)?.error;
    // The rule `client.fetch` keeps too: shouldRetry.
    if (
      !config?._rotorAuth ||
      config._rotorRetried ||
      !shouldRetry(error.response?.status ?? 0, code)
    ) {
      throw error;
    }
    const refusal = {
      code,
      method: (config.method ?? 'get').toUpperCase(),
      url: instance.getUri(config),
    };
    if (!(await config._rotorAuth.refused(refusal))) throw error;
    config._rotorRetried = true;
    return instance.request(config);
  });
  return instance;
}
