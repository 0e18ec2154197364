// Bench users: registered and signed in over HTTP as a mobile client would (tokens in the body).

/** Every bench user's password. */
export const PASSWORD = 'correct horse battery staple';

async function post(url, path, body, headers = {}) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Registers `count` users on `url` and signs each in once; returns their sessions' tokens. */
export async function signInUsers(url, count, prefix = 'bench') {
  const sessions = [];
  for (let i = 0; i < count; i += 1) {
    const email = `${prefix}-${i}@example.test`;
    await post(url, '/auth/register', { email, password: PASSWORD });
    sessions.push(await signIn(url, email));
  }
  return sessions;
}

/** One login of `email`: `{accessToken, refreshToken}`. */
export async function signIn(url, email) {
  const json = await post(
    url,
    '/auth/login',
    { email, password: PASSWORD },
    { 'token-delivery': 'body' },
  );
  return { email, accessToken: json.accessToken, refreshToken: json.refreshToken };
}
