import { prepareTemplateDatabase } from '@pingvas/testkit';

/** Migrate the template database once, before any test file copies it. */
export default async function setup(): Promise<void> {
  await prepareTemplateDatabase();
}
