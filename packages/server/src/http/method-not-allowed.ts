import type { FastifyInstance } from 'fastify';

/**
 * Which methods each registered path answers, read from the routes as Fastify registers them (the
 * `onRoute` hook), so the list cannot drift from the routes. Returns the lookup the not-found
 * handler uses to tell a wrong method on a known path (`405` with `Allow`, RFC 9110 §15.5.6) from
 * an unknown path (`404`). Install it before any route is registered: `onRoute` sees only later
 * routes. The lookup walks every route, so it runs only when no route matched, never on the hot
 * path.
 */
export function trackAllowedMethods(app: FastifyInstance): (path: string) => string[] {
  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  const byUrl = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    let methods = byUrl.get(route.url);
    if (!methods) {
      methods = new Set();
      byUrl.set(route.url, methods);
      routes.push({ pattern: routePattern(route.url), methods });
    }
    for (const method of [route.method].flat()) methods.add(method.toUpperCase());
  });
  return (path) => {
    const allowed = new Set<string>();
    for (const route of routes) {
      if (route.pattern.test(path)) for (const method of route.methods) allowed.add(method);
    }
    return [...allowed].sort();
  };
}

/**
 * A route path in find-my-way's syntax as a regular expression over a request path: `:name` is one
 * segment (or the regular expression in parentheses after it), `*` the rest, `::` a literal colon.
 */
function routePattern(url: string): RegExp {
  let source = '';
  for (let i = 0; i < url.length; i += 1) {
    const char = url[i]!;
    if (char === ':' && url[i + 1] === ':') {
      source += ':';
      i += 1;
    } else if (char === ':') {
      let end = i + 1;
      while (end < url.length && /[\w$]/.test(url[end]!)) end += 1;
      if (url[end] === '(') {
        const close = url.indexOf(')', end);
        source += `(?:${url.slice(end + 1, close)})`;
        end = close + 1;
      } else {
        source += '[^/]+';
      }
      i = end - 1;
    } else if (char === '*') {
      source += '.*';
    } else {
      source += char.replace(/[.+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}
