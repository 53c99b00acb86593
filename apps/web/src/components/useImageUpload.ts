import { useMutation } from '@tanstack/react-query';
import { useCallback, useState } from 'react';
import { useTRPC } from '../app/trpc.js';
import { describeError } from '../lib/errors.js';
import { putWithProgress, uploadImage, UploadError, type UploadedImage } from '../lib/upload.js';

export type UploadState =
  | { phase: 'idle' }
  | { phase: 'uploading'; name: string; fraction: number }
  | { phase: 'checking'; name: string }
  | { phase: 'failed'; name: string; message: string };

/**
 * One picture at a time through `uploads.create` → PUT → `uploads.complete`, with the
 * state a form shows: how far the bytes are, then the server's check, or why it failed.
 */
export function useImageUpload() {
  const trpc = useTRPC();
  const create = useMutation(trpc.uploads.create.mutationOptions());
  const complete = useMutation(trpc.uploads.complete.mutationOptions());
  const [state, setState] = useState<UploadState>({ phase: 'idle' });

  const upload = useCallback(
    async (file: Blob, name: string): Promise<UploadedImage | null> => {
      setState({ phase: 'uploading', name, fraction: 0 });
      try {
        const uploaded = await uploadImage(
          file,
          name,
          {
            create: (input) => create.mutateAsync(input),
            put: putWithProgress,
            complete: (input) => {
              setState({ phase: 'checking', name });
              return complete.mutateAsync(input);
            },
          },
          (fraction) => setState((s) => (s.phase === 'uploading' ? { ...s, fraction } : s)),
        );
        setState({ phase: 'idle' });
        return uploaded;
      } catch (error) {
        const message = error instanceof UploadError ? error.message : describeError(error).message;
        setState({ phase: 'failed', name, message });
        return null;
      }
    },
    [create, complete],
  );

  return { state, upload, reset: () => setState({ phase: 'idle' }) };
}
