/**
 * The e-mails the studio sends, each as plain text and simple HTML. Pure functions of their
 * inputs: the outbox stores the rendered result, so a later template change never alters a
 * message already queued.
 */

export interface RenderedEmail {
  template: string;
  subject: string;
  text: string;
  html: string;
}

export type EmailInput =
  | { template: 'welcome'; planName: string; monthlyCredits: number; appUrl: string }
  | { template: 'payment_failed_first'; planName: string; appUrl: string }
  | { template: 'payment_failed_later'; planName: string; failedCount: number; appUrl: string }
  | { template: 'payment_recovered'; planName: string }
  | { template: 'subscription_cancelled'; planName: string; appUrl: string }
  | { template: 'credits_added'; credits: number; appUrl: string };

const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const number = (n: number) => n.toLocaleString('en-US');

/**
 * The provider's own update-card link is signed for about a day, so messages link to our
 * billing page, which asks the provider for a fresh one when the customer clicks.
 */
export const updateCardUrl = (appUrl: string) => `${appUrl}/billing?update-card=1`;

interface Block {
  text: string;
  link?: { label: string; url: string };
}

function compose(template: string, subject: string, blocks: Block[]): RenderedEmail {
  const text = [
    ...blocks.map((b) => (b.link ? `${b.text}\n${b.link.label}: ${b.link.url}` : b.text)),
    '— Pingvas Studio',
  ].join('\n\n');
  const body = blocks
    .map(
      (b) =>
        `<p>${escapeHtml(b.text)}</p>${b.link ? `<p><a href="${escapeHtml(b.link.url)}">${escapeHtml(b.link.label)}</a></p>` : ''}`,
    )
    .join('\n');
  const html = `<!doctype html><html><body style="font-family: sans-serif; line-height: 1.5">\n${body}\n<p>— Pingvas Studio</p>\n</body></html>`;
  return { template, subject, text: `${text}\n`, html };
}

export function renderEmail(input: EmailInput): RenderedEmail {
  switch (input.template) {
    case 'welcome':
      return compose(input.template, `Welcome to Pingvas ${input.planName}`, [
        {
          text: `Thank you for subscribing to ${input.planName}. ${number(input.monthlyCredits)} credits are in your account now, and the same allocation arrives with every paid month.`,
        },
        {
          text: 'Your jobs also get a better place in the queue.',
          link: { label: 'Start creating', url: input.appUrl },
        },
      ]);
    case 'payment_failed_first':
      return compose(input.template, `We couldn't take your ${input.planName} payment`, [
        {
          text: `Your latest ${input.planName} payment did not go through. Nothing changes for now: we'll retry automatically over the next days and your plan stays active meanwhile.`,
        },
        {
          text: 'If your card has changed, you can update it now.',
          link: { label: 'Update payment method', url: updateCardUrl(input.appUrl) },
        },
      ]);
    case 'payment_failed_later':
      return compose(input.template, `Please update your card to keep ${input.planName}`, [
        {
          text: `We tried to take your ${input.planName} payment ${input.failedCount} times without success. Please update your card, or your subscription will be cancelled when the retries run out.`,
        },
        { text: 'It takes a minute:', link: { label: 'Update payment method', url: updateCardUrl(input.appUrl) } },
      ]);
    case 'payment_recovered':
      return compose(input.template, `Your ${input.planName} payment went through`, [
        { text: `Thank you: your ${input.planName} payment succeeded and your subscription continues as before.` },
      ]);
    case 'subscription_cancelled':
      return compose(input.template, `Your ${input.planName} subscription has ended`, [
        {
          text: `Your ${input.planName} subscription has ended and your account is on the Free plan now. Credits you bought in packs stay yours; the monthly plan credits are gone.`,
        },
        { text: 'You can subscribe again at any time.', link: { label: 'See plans', url: `${input.appUrl}/billing` } },
      ]);
    case 'credits_added':
      return compose(input.template, `${number(input.credits)} credits added to your account`, [
        {
          text: `Thank you for your purchase: ${number(input.credits)} credits are in your account now. Purchased credits never expire.`,
        },
        { text: 'Put them to work:', link: { label: 'Open the studio', url: input.appUrl } },
      ]);
  }
}
