import type { AxiosError, AxiosInstance, InternalAxiosRequestConfig } from 'axios';
import type { RotorClient } from './client.js';

type RetriableConfig = InternalAxiosRequestConfig & { _rotorRetried?: boolean };

/**
 * Makes an axios instance send Rotor's access token and, on `401 token_expired` or `invalid_token`,
 * refresh once and retry once (sharing the client's single-flight refresh). axios is an optional
 * peer: only its types are imported here.
 * @example attachRotor(axios.create({ baseURL: '/api' }), rotor)
 */
export function attachRotor<T extends AxiosInstance>(instance: T, client: RotorClient): T {
  instance.interceptors.request.use(async (config) => {
    const token = await client.getAccessToken();
    if (token) config.headers.set('Authorization', `Bearer ${token}`);
    return config;
  });
  instance.interceptors.response.use(undefined, async (error: AxiosError) => {
    const config = error.config as RetriableConfig | undefined;
    const code = (error.response?.data as { error?: unknown } | undefined)?.error;
    if (
      !config ||
      config._rotorRetried ||
      error.response?.status !== 401 ||
      // As `client.fetch`: an expired token, or one no longer valid (its signing key retired).
      (code !== 'token_expired' && code !== 'invalid_token')
    ) {
      throw error;
    }
    if (!(await client.refresh())) throw error;
    config._rotorRetried = true;
    return instance.request(config);
  });
  return instance;
}
