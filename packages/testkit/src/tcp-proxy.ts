import { connect, createServer, type Socket } from 'node:net';

/** One client connection through a {@link TcpProxy}, and its connection to the target. */
export interface ProxiedConnection {
  /**
   * The first bytes the client sent (up to 1 KiB): for PostgreSQL without TLS, the startup message,
   * whose `application_name` tells the connections of one client apart.
   */
  readonly hello: Buffer;
  /** Bytes forwarded from the client to the target so far. */
  readonly bytesToTarget: number;
  /** Whether either side has closed. */
  readonly closed: boolean;
  /**
   * Stops forwarding both ways and keeps both sockets open, as a network path that goes dead
   * without a reset: each side's writes are accepted and wait, nothing arrives, nothing closes.
   */
  freeze(): void;
}

/** A TCP proxy on 127.0.0.1 whose connections a test can freeze. */
export interface TcpProxy {
  port: number;
  /** Every connection accepted so far, oldest first. */
  connections(): ProxiedConnection[];
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

const HELLO_BYTES = 1024;

/**
 * Starts a TCP proxy on a free loopback port that forwards each connection to `target`, so that a
 * test can cut one connection without closing it (a half-open connection: no FIN, no RST).
 *
 * @example
 * const proxy = await startTcpProxy({ host: '127.0.0.1', port: postgres.port });
 * const listener = proxy.connections().find((c) => c.hello.includes('rotor-listen'));
 * listener?.freeze();
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const all: ProxiedConnection[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let hello = Buffer.alloc(0);
    let bytesToTarget = 0;
    let frozen = false;
    let closed = false;
    client.on('data', (chunk: Buffer) => {
      if (hello.length < HELLO_BYTES)
        hello = Buffer.concat([hello, chunk]).subarray(0, HELLO_BYTES);
      bytesToTarget += chunk.length;
    });
    const close = () => {
      closed = true;
      // A frozen path carries no goodbye either: the other side is left waiting.
      if (frozen) return;
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    all.push({
      get hello() {
        return hello;
      },
      get bytesToTarget() {
        return bytesToTarget;
      },
      get closed() {
        return closed;
      },
      freeze() {
        frozen = true;
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    connections: () => [...all],
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
