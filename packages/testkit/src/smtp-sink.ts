import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The whole message as received (headers and body). */
  raw: string;
  subject: string;
  messageId: string;
}

export interface SmtpSink {
  /** `smtp://127.0.0.1:<port>`: pass it as SMTP_URL. */
  url: string;
  /** Every message accepted, in order. */
  messages: ReceivedMail[];
  /** Refuses the next `count` messages at the end of DATA with a temporary 451, as a busy server would. */
  refuseNext(count?: number): void;
  /** How many messages were refused so far. */
  refused: number;
  close(): Promise<void>;
}

const header = (raw: string, name: string) =>
  raw
    .split(/\r?\n\r?\n/, 1)[0]!
    .replace(/\r?\n[ \t]+/g, ' ')
    .match(new RegExp(`^${name}:\\s*(.*)$`, 'im'))?.[1]
    ?.trim() ?? '';

/** A real SMTP server on loopback that keeps what it receives (no TLS, no auth). */
export async function startSmtpSink(): Promise<SmtpSink> {
  let toRefuse = 0;
  const sink: SmtpSink = {
    url: '',
    messages: [],
    refused: 0,
    refuseNext(count = 1) {
      toRefuse += count;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (toRefuse > 0) {
          toRefuse -= 1;
          sink.refused += 1;
          const error = Object.assign(new Error('Mailbox busy, try again later'), { responseCode: 451 });
          return callback(error);
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        sink.messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          subject: header(raw, 'Subject'),
          messageId: header(raw, 'Message-ID'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  sink.url = `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  return sink;
}
