import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '@pingvas/db';
import { grant, hold, release } from '../modules/credits/ledger.js';
import { fundedUser, smallParams } from './factories.js';
import { createTestApp, type TestApp } from './harness.js';
import { expectLedgerInvariants } from './invariants.js';

// The invariants run as one query; each rule must still fail on its own violation, scoped to the
// user it concerns and unscoped.
let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(async () => {
  await app.close();
});

async function userWithCredits(): Promise<string> {
  const user = await app.createUser();
  await withSystem(app.deps.db, async (tx) => {
    await grant(tx, {
      userId: user.id,
      key: `purchase:${user.id}`,
      type: 'purchase',
      bucket: 'purchased',
      amount: 1000,
      reference: 'test',
      description: 'test pack',
    });
    const { hold: held } = await hold(tx, { userId: user.id, key: `hold:${user.id}`, amount: 300 });
    await release(tx, { userId: user.id, holdId: held.id });
  });
  return user.id;
}

describe('ledger invariants', () => {
  it('hold on a consistent ledger', async () => {
    const userId = await userWithCredits();
    await expectLedgerInvariants(app.database.admin, { userId });
    await expectLedgerInvariants(app.database.admin);
  });

  it('catch a balance that drifts from its transactions (that user and unscoped; not another user)', async () => {
    const broken = await userWithCredits();
    const other = await userWithCredits();
    const admin = app.database.admin;
    await admin`update credit_balances set purchased_credits = purchased_credits + 1 where user_id = ${broken}`;
    await expect(expectLedgerInvariants(admin, { userId: broken })).rejects.toThrow(/balances must equal/);
    await expect(expectLedgerInvariants(admin)).rejects.toThrow(/balances must equal/);
    await expectLedgerInvariants(admin, { userId: other });
    await admin`update credit_balances set purchased_credits = purchased_credits - 1 where user_id = ${broken}`;
  });

  it('catch a second closing entry of a hold', async () => {
    const userId = await userWithCredits();
    const admin = app.database.admin;
    await admin`
      insert into credit_transactions
        (user_id, type, idempotency_key, subscription_delta, purchased_delta, held_delta, balance_after, hold_id)
      select user_id, 'release', idempotency_key || ':again', 0, 0, 0, balance_after, hold_id
      from credit_transactions where user_id = ${userId} and type = 'release'`;
    await expect(expectLedgerInvariants(admin, { userId })).rejects.toThrow(/each hold has one hold entry/);
  });

  it('catch a live job whose hold was closed under it (what settling leftover jobs first would hide)', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const admin = app.database.admin;
    await expectLedgerInvariants(admin, { userId: user.id });
    const [job] = await admin`select hold_id from generation_jobs where id = ${jobId}`;
    await withSystem(app.deps.db, (tx) => release(tx, { userId: user.id, holdId: job!.hold_id as string }));
    await expect(expectLedgerInvariants(admin, { userId: user.id })).rejects.toThrow(
      /a job holds its credits exactly while it is live/,
    );
    await admin`update generation_jobs set status = 'cancelled', charged_credits = 0 where id = ${jobId}`;
    await expectLedgerInvariants(admin, { userId: user.id });
  });

  it("catch a finished job whose charged_credits differ from its hold's captured amount", async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const admin = app.database.admin;
    const [job] = await admin`select hold_id from generation_jobs where id = ${jobId}`;
    await withSystem(app.deps.db, (tx) => release(tx, { userId: user.id, holdId: job!.hold_id as string }));
    // Released (captured 0) but the job says it charged 7.
    await admin`update generation_jobs set status = 'cancelled', charged_credits = 7 where id = ${jobId}`;
    await expect(expectLedgerInvariants(admin, { userId: user.id })).rejects.toThrow(
      /each finished job's charge equals its hold's captured amount/,
    );
    await admin`update generation_jobs set charged_credits = 0 where id = ${jobId}`;
    await expectLedgerInvariants(admin, { userId: user.id });
  });
});
