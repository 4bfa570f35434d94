import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';
import type { Channel, Lang, NotificationMessage, Recipient } from '../types.js';
import { MailChannel, type MailChannelOptions } from './mail.channel.js';
import { WebhookChannel, type WebhookChannelOptions } from './webhook.channel.js';

export { MailChannel, type MailChannelOptions, isPermanentSmtpError } from './mail.channel.js';
export { WebhookChannel, type WebhookChannelOptions, signWebhook, verifyWebhookSignature, SIGNATURE_TOLERANCE_SECONDS } from './webhook.channel.js';

export interface ChannelsOptions {
  mail?: MailChannelOptions;
  webhook?: WebhookChannelOptions;
  /** Given to both channels unless their own options name one. */
  log?: Logger;
}

export interface Channels extends Channel {
  readonly mail: MailChannel;
  readonly webhook: WebhookChannel;
  close(): Promise<void>;
}

/** One Channel for every recipient kind: `mail:` goes by SMTP, `webhook:` by HTTP. */
export function createChannels(notify: Config['notify'], opts: ChannelsOptions = {}): Channels {
  const log = opts.log;
  const mail = new MailChannel(notify, { ...(log && { log }), ...opts.mail });
  const webhook = new WebhookChannel(notify.webhooks, { ...(log && { log }), ...opts.webhook });
  return {
    mail,
    webhook,
    deliver(recipient: Recipient, message: NotificationMessage & { id: string }, lang: Lang) {
      return recipient.kind === 'mail' ? mail.deliver(recipient, message, lang) : webhook.deliver(recipient, message, lang);
    },
    async close() {
      await mail.close();
    },
  };
}
