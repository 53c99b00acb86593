import { useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { checkUpscaleSize, UPSCALE_SCALES, type UpscaleScale } from '@pingvas/core';
import { useTRPC } from '../app/trpc.js';
import { formatCredits } from '../lib/credits.js';
import { describeError } from '../lib/errors.js';
import { InsufficientCreditsModal } from './InsufficientCreditsModal.js';
import { useToast } from './Toasts.js';
import { useJobStarted } from './useJobStarted.js';

function UpscaleButton({
  image,
  scale,
  onQueue,
  busy,
}: {
  image: { id: string; width: number; height: number; prompt: string };
  scale: UpscaleScale;
  onQueue: (scale: UpscaleScale) => void;
  busy: boolean;
}) {
  const trpc = useTRPC();
  const tooBig = checkUpscaleSize(image, scale);
  // The price follows the source's size, which only the API looks up: it says, with the balance.
  const estimate = useQuery(
    trpc.credits.estimateUpscale.queryOptions({ imageId: image.id, scale }, { enabled: tooBig === null }),
  );
  const price = estimate.data
    ? `${formatCredits(estimate.data.credits)} credits${estimate.data.enough === false ? ', more than you have' : ''}`
    : '…';
  return (
    <button
      type="button"
      className="button"
      aria-disabled={busy || tooBig !== null}
      title={tooBig ?? undefined}
      onClick={() => !busy && tooBig === null && onQueue(scale)}
      data-testid={`upscale-${scale}`}
    >
      Upscale {scale}×{' '}
      <span className="muted small">
        {tooBig !== null ? 'too large' : `${image.width * scale} × ${image.height * scale} · ${price}`}
      </span>
    </button>
  );
}

/** "Upscale 2× / 4×" on an image's page, priced by the API, then watched in the studio. */
export function UpscaleButtons({
  image,
}: {
  image: { id: string; width: number; height: number; prompt: string; model: string };
}) {
  const trpc = useTRPC();
  const jobStarted = useJobStarted();
  const toast = useToast();
  const navigate = useNavigate();
  const [shortfall, setShortfall] = useState<{ balance: number; needed: number } | null>(null);

  const upscale = useMutation(
    trpc.generation.upscale.mutationOptions({
      onSuccess: (result, input) => {
        jobStarted(result, {
          prompt: image.prompt,
          model: image.model,
          width: image.width * input.scale,
          height: image.height * input.scale,
          count: 1,
        });
        void navigate('/studio');
      },
      onError: (error) => {
        const described = describeError(error);
        if (described.kind === 'payment_required' && described.credits) setShortfall(described.credits);
        else toast.error(error);
      },
    }),
  );

  return (
    <>
      <div className="upscale-row" role="group" aria-label="Upscale">
        {UPSCALE_SCALES.map((scale) => (
          <UpscaleButton
            key={scale}
            image={image}
            scale={scale}
            busy={upscale.isPending}
            onQueue={(s) => upscale.mutate({ imageId: image.id, scale: s })}
          />
        ))}
      </div>
      {shortfall && (
        <InsufficientCreditsModal
          balance={shortfall.balance}
          needed={shortfall.needed}
          onClose={() => setShortfall(null)}
        />
      )}
    </>
  );
}
