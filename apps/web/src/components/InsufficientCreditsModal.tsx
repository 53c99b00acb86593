import { useNavigate } from 'react-router';
import { formatCredits } from '../lib/credits.js';
import { Modal } from './Modal.js';

/** The product spec's 402 journey: what is left, what is needed, and the two ways to get there. */
export function InsufficientCreditsModal({
  balance,
  needed,
  onClose,
}: {
  balance: number;
  needed: number;
  onClose: () => void;
}) {
  const navigate = useNavigate();
  const go = (hash: string) => {
    onClose();
    void navigate(`/billing${hash}`);
  };
  return (
    <Modal
      title="Not enough credits"
      onClose={onClose}
      testId="insufficient-credits-modal"
      footer={
        <>
          <button type="button" className="button ghost" onClick={onClose}>
            Not now
          </button>
          <button type="button" className="button" onClick={() => go('#packs')} data-testid="modal-buy-credits">
            Buy credits
          </button>
          <button
            type="button"
            className="button primary"
            onClick={() => go('#plans')}
            data-testid="modal-upgrade"
            data-autofocus
          >
            Upgrade plan
          </button>
        </>
      }
    >
      <div className="credit-gap">
        <div>
          <span className="muted small">Remaining</span>
          <strong data-testid="modal-remaining">{formatCredits(balance)}</strong>
        </div>
        <div className="gap-arrow" aria-hidden="true">
          →
        </div>
        <div>
          <span className="muted small">Needed</span>
          <strong data-testid="modal-needed">{formatCredits(needed)}</strong>
        </div>
      </div>
      <p>
        You have <strong>{formatCredits(balance)}</strong> credits remaining; this generation needs{' '}
        <strong>{formatCredits(needed)}</strong>. Upgrade your plan for monthly credits, or buy a one-time pack that
        never expires.
      </p>
    </Modal>
  );
}
