import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** One mail the sink received, parsed. */
export interface ReceivedMail {
  to: string;
  from: string;
  subject: string;
  text: string;
  html: string;
  /** The first link with a token fragment (`#action=token`) in the text, if any. */
  link: string | undefined;
  /** That link's action and token. */
  action: string | undefined;
  token: string | undefined;
}

/** A real SMTP server on loopback (the `smtp-server` package) that keeps what it receives. */
export interface SmtpSink {
  /** `smtp://user:pass@127.0.0.1:port`, for `ROTOR_SMTP_URL`. */
  url: string;
  mails: ReceivedMail[];
  /** Resolves with the first mail (received or to come) that `match` accepts; rejects after `ms`. */
  waitFor(match: (mail: ReceivedMail) => boolean, ms?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

const USER = 'rotor';
const PASS = 'smtp secret';

/** Starts an SMTP sink on 127.0.0.1 and a free port; plain SMTP with AUTH PLAIN/LOGIN. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: false,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === USER && auth.password === PASS) callback(null, { user: USER });
      else callback(new Error('Invalid username or password'));
    },
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          mails.push(received(parsed));
          for (const wake of waiters) wake();
          callback();
        })
        .catch(callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as { port: number };
  return {
    url: `smtp://${USER}:${encodeURIComponent(PASS)}@127.0.0.1:${port}`,
    mails,
    waitFor(match, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = mails.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching mail within ${ms} ms (${mails.length} received)`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function received(parsed: ParsedMail): ReceivedMail {
  const to = [parsed.to ?? []].flat().flatMap((a) => a.value.map((v) => v.address ?? ''))[0] ?? '';
  const text = parsed.text ?? '';
  const link = /https?:\/\/\S+#[a-z-]+=[A-Za-z0-9_-]+/.exec(text)?.[0];
  const fragment = link && /#([a-z-]+)=([A-Za-z0-9_-]+)$/.exec(link);
  return {
    to,
    from: parsed.from?.value[0]?.address ?? '',
    subject: parsed.subject ?? '',
    text,
    html: typeof parsed.html === 'string' ? parsed.html : '',
    link,
    action: fragment ? fragment[1] : undefined,
    token: fragment ? fragment[2] : undefined,
  };
}
