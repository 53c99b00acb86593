/**
 * How long one job may run, from its own size. A job's hold is its estimate, and the charge is
 * 1 credit per engine second, never more than the hold: so the hold is exactly the engine time
 * the user has paid for. A run is allowed that time, plus the model load (engine time the
 * estimate does not price), plus the upload after the engine exits, and never more than the
 * operator's global ceiling.
 */
export interface DeadlinePolicy {
  /** Seconds of engine time one held credit allows; 1 = exactly what the hold pays for. */
  secondsPerCredit: number;
  /** Engine start and model load, on top of the paid steps. */
  loadAllowanceSeconds: number;
  /** From the engine's exit to `worker.complete`: thumbnail, uploads, the call itself. */
  uploadAllowanceSeconds: number;
  /** No run is allowed longer than this, whatever its hold. */
  ceilingSeconds: number;
}

export interface JobDeadline {
  /** The worker kills the engine after this many seconds (a TIMEOUT failure). */
  engineSeconds: number;
  /** From the claim: past this the reconciler stops the run even while it heartbeats. */
  runSeconds: number;
}

export function jobDeadline(heldCredits: number, policy: DeadlinePolicy): JobDeadline {
  if (!Number.isFinite(heldCredits) || heldCredits < 0) {
    throw new RangeError(`held credits must be a finite non-negative number, got ${heldCredits}`);
  }
  const wanted = heldCredits * policy.secondsPerCredit + policy.loadAllowanceSeconds;
  const total = wanted + policy.uploadAllowanceSeconds;
  if (total <= policy.ceilingSeconds) return { engineSeconds: wanted, runSeconds: total };
  // A ceiling that cuts in is shared in the same proportion, so a capped engine still leaves
  // time to deliver its image.
  const runSeconds = policy.ceilingSeconds;
  const engineSeconds = runSeconds * (wanted / total);
  return { engineSeconds, runSeconds };
}
